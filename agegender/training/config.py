"""Recipes: YAML files mapped onto typed dataclasses, with ``key.sub=value`` overrides and typo checks."""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agegender.data.names import dataset_name, unique_names
from agegender.data.records import DataError
from agegender.data.transforms import AugmentConfig
from agegender.errors import ConfigError
from agegender.models.model import ModelConfig

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"


class RecipeError(ConfigError):
    """A recipe or override that does not fit the schema; the message names the key and suggests fixes."""


@dataclass
class LossConfig:
    age_loss: str = "l1"  # regression head: l1 | mse | smooth_l1
    sigma: float = 2.0  # distribution head: width of the Gaussian label distribution, in years
    weighting: str = "fixed"  # fixed | uncertainty
    age_weight: float = 1.0
    gender_weight: float = 1.0


@dataclass
class SourceConfig:
    """One dataset of a multi-source run; ``weight`` is its share of the training samples drawn per epoch."""

    path: str = ""
    format: str = "auto"
    weight: float | None = None  # None: in proportion to its size (plain concatenation)
    name: str | None = None  # how tables and logs call it; default: from the path

    @classmethod
    def from_string(cls, value: str) -> dict:
        return {"path": value}


def source_name(src: SourceConfig) -> str:
    """``utkface`` for ``../shared/data/utkface``, ``appa_real_train`` for ``.../appa_real_train/labels.csv``."""
    return src.name or dataset_name(src.path)


@dataclass
class DataConfig:
    path: str | None = None  # one dataset; for several use ``sources``
    format: str = "auto"
    sources: list[SourceConfig] = field(default_factory=list)
    split_file: str | None = None  # default: <output_dir>/split.json
    fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    duplicates: str = "first"
    strict: bool = False
    cache: bool = True  # decode every image once into memory
    batch_size: int = 64
    eval_batch_size: int = 128
    num_workers: int = 2
    limit: int | None = None  # quick runs: N records of each split (per dataset), a fixed sample over all ages
    # Final refit: once a recipe is chosen on val, train on train + val (val is still scored, but no longer held
    # out, so the model folder takes the last epoch instead of the best one).
    train_on_val: bool = False
    # Even out age bands when sampling training faces: 0 = as they come, 1 = every band equally often.
    balance_age: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def source_list(self) -> list[SourceConfig]:
        """The datasets to train on, named uniquely: ``sources``, or ``path`` as the only one."""
        if self.sources and self.path:
            raise RecipeError("set either data.path (one dataset) or data.sources (several), not both")
        srcs = list(self.sources) or ([SourceConfig(self.path, self.format)] if self.path else [])
        for s in srcs:
            if not s.path:
                raise RecipeError("every entry of data.sources needs a path")
        names = unique_names([source_name(s) for s in srcs])
        return [dataclasses.replace(s, name=n) for s, n in zip(srcs, names, strict=True)]


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    backbone_lr_mult: float = 1.0  # pretrained backbones often want a smaller learning rate than heads
    scheduler: str = "cosine"  # cosine | plateau | none
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.01
    plateau_patience: int = 3
    plateau_factor: float = 0.5


@dataclass
class TrainConfig:
    epochs: int = 30
    seed: int = 42
    precision: str = "auto"  # auto: 16-mixed on CUDA, 32 on CPU; or 32, bf16-mixed, 16-mixed
    trainable: list[str] = field(default_factory=lambda: ["all"])
    mix: str = "none"  # none | mixup | cutmix | both
    mix_alpha: float = 0.4
    mix_prob: float = 0.5
    early_stopping: int | None = None  # patience in epochs on the validation score
    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    num_nodes: int = 1
    loggers: list[str] = field(default_factory=lambda: ["csv", "trackio"])
    output_dir: str = "runs/{name}"
    checkpoint_every_n_steps: int = 200
    channels_last: bool = True
    threads: int | None = None
    limit_train_batches: float | int | None = None
    limit_val_batches: float | int | None = None
    progress: bool = True


@dataclass
class DistillConfig:
    teachers: list[str] = field(default_factory=list)  # model folders or checkpoints; empty: no distillation
    alpha: float = 0.5  # weight of the teachers' soft targets against the labels
    tta: bool = True  # teachers also see the mirrored face


@dataclass
class Recipe:
    name: str = "custom"
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def output_dir(self) -> Path:
        return Path(self.train.output_dir.format(name=self.name))


_YAML11_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a YAML value to the annotated type, with a message naming the key."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, str) and hasattr(tp, "from_string"):
            value = tp.from_string(value)
        if not isinstance(value, dict):
            raise RecipeError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        # Try the member matching the value's own type first, so ``float | int`` keeps 1 an int (1 batch, not 100%).
        args = sorted(typing.get_args(tp), key=lambda a: a is not type(value))
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except RecipeError as e:
                errors.append(str(e))
        raise RecipeError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            value = [value]
        (item,) = typing.get_args(tp)[:1] or (Any,)
        out = [_coerce(v, item, key) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is Any or tp is dict:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise RecipeError(f"{key}: expected true or false, got {value!r}")
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and _YAML11_EXPONENT.match(value):
        return float(value)  # PyYAML (YAML 1.1) reads 1e-4 as a string: only 1.0e-4 is a float there
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is str and isinstance(value, str):
        return value
    raise RecipeError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _build(cls: type, values: dict, prefix: str = "") -> Any:
    hints = _type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for k, v in values.items():
        full = f"{prefix}.{k}" if prefix else k
        if k not in names:
            close = difflib.get_close_matches(k, names, n=1)
            hint = f" (did you mean {prefix + '.' if prefix else ''}{close[0]}?)" if close else ""
            raise RecipeError(f"unknown recipe key {full!r}{hint}; valid keys here: {', '.join(names)}")
        kwargs[k] = _coerce(v, hints[k], full)
    return cls(**kwargs)


def _set_dotted(d: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise RecipeError(f"override {dotted}: {p} is not a section")
    d[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.epochs=3", "model.backbone=resnet18"]`` -> nested dict; values are parsed as YAML."""
    out: dict = {}
    for o in overrides:
        if "=" not in o:
            raise RecipeError(f"override {o!r} must look like key.sub=value")
        key, raw = o.split("=", 1)
        _set_dotted(out, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    return out


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def find_recipe(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = RECIPES_DIR / f"{Path(str(name_or_path)).stem}.yaml"
    if cand.is_file():
        return cand
    known = ", ".join(sorted(q.stem for q in RECIPES_DIR.glob("*.yaml")))
    raise RecipeError(f"recipe {name_or_path!r} not found (neither a file nor a built-in: {known})")


def load_recipe(name_or_path: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    """Load a built-in recipe by name or a YAML file, then apply ``key=value`` overrides."""
    values: dict = {}
    if name_or_path is not None:
        path = find_recipe(name_or_path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise RecipeError(f"{path}: not valid YAML ({e})") from None
        if not isinstance(values, dict):
            raise RecipeError(f"{path}: a recipe must be a mapping of sections")
        values.setdefault("name", path.stem)
    values = _merge(values, parse_overrides(overrides or []))
    try:
        return _build(Recipe, values)
    except TypeError as e:
        raise DataError(f"invalid recipe: {e}") from None


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
