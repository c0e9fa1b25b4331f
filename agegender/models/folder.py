"""Self-contained model folders: ``config.json`` + ``model.safetensors`` and/or ``model.onnx`` (+ MODEL_CARD.md).

The same format is written by ``agegender train`` and shipped as the default model, so users' models load
exactly like ours, with no network and no pickles. ``config.json`` is the single source of preprocessing
truth (input size, mean/std, colour order, crop convention) and of label conventions: the ONNX runtime reads
it and nothing else, so this module imports torch only inside the functions that handle weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from agegender.errors import AgeGenderError
from agegender.models.checkpoint import read_checkpoint

if TYPE_CHECKING:
    import torch

    from agegender.models.model import AgeGenderNet

#: Versions of ``config.json`` this code reads; a folder written by a newer agegender is refused, not misread.
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
#: The exported graph's file name in a model folder, and its outputs by name (the runtime asks for them by name).
ONNX_FILE = "model.onnx"
OUTPUT_NAMES = ["age", "age_std", "p_female"]
#: The face framing models are trained on: UTKFace "aligned & cropped" chips.
CROP_CONVENTION = "utkface_chip_200"


class ModelFolderError(AgeGenderError, FileNotFoundError):
    """A model folder that is missing or incomplete; the message says what is missing."""


class ModelFormatError(ModelFolderError):
    """A ``config.json`` this version cannot read (unknown ``format_version`` or missing preprocessing)."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a face crop becomes the network's input, as stored in ``config.json``'s ``preprocessing``.

    RGB uint8 crop in the ``crop`` framing -> square resize to ``input_size`` with ``resize`` interpolation ->
    ``(pixel / 255 - mean) / std`` per channel -> CHW float32 (``layout``), exactly as validation in training.
    """

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    color: str = "RGB"
    crop: str = CROP_CONVENTION
    resize: str = "area"
    layout: str = "NCHW"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_config(cls, config: dict, where: str | Path = "config.json") -> Preprocessing:
        """Read and check the ``preprocessing`` section (folders written before it had ``resize``/``layout``
        used the values that are now the defaults)."""
        pre = config.get("preprocessing")
        if not isinstance(pre, dict) or not {"input_size", "mean", "std"} <= pre.keys():
            raise ModelFormatError(f"{where}: 'preprocessing' needs input_size, mean and std")
        known = {f.name for f in dataclasses.fields(cls)}
        spec = cls(**{k: v for k, v in pre.items() if k in known})
        spec = dataclasses.replace(spec, mean=tuple(spec.mean), std=tuple(spec.std), input_size=int(spec.input_size))
        for key, allowed in (("color", "RGB"), ("resize", "area"), ("layout", "NCHW")):
            if getattr(spec, key) != allowed:
                raise ModelFormatError(f"{where}: preprocessing {key}={getattr(spec, key)!r} is not supported")
        return spec


def save_model_folder(net: AgeGenderNet, folder: str | Path, metadata: dict | None = None) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(
        net.cfg,
        pretrained=False,
        pretrained_path=None,
        input_size=net.input_size,
        mean=list(net.mean),
        std=list(net.std),
    )
    config = {
        "format_version": FORMAT_VERSION,
        "model": cfg.to_dict(),
        "preprocessing": Preprocessing(net.input_size, tuple(net.mean), tuple(net.std)).to_dict(),
        "labels": {"gender": {"0": "male", "1": "female"}, "age_range": [0, cfg.num_bins - 1], "age_unit": "years"},
        **(metadata or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    tmp = folder / "model.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.chmod(0o644)  # safetensors creates the file private; model folders are meant to be shared
    tmp.replace(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def read_config(folder: str | Path) -> dict:
    """``config.json`` of a model folder, after checking that this version can read it."""
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelFolderError(f"{folder} is not a model folder: {cfg_path.name} is missing")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"{cfg_path} is not valid JSON ({e}): the model folder is damaged") from None
    version = config.get("format_version") if isinstance(config, dict) else None
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ModelFormatError(
            f"{cfg_path}: format_version {version!r} is not supported by this agegender (reads "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}); upgrade agegender or re-export the model"
        )
    return config


def load_model_folder(folder: str | Path | None = None, device: str | torch.device = "cpu") -> AgeGenderNet:
    """Load a model folder (default: the shipped model) as a PyTorch network in eval mode."""
    from safetensors.torch import load_file

    from agegender.models.model import ModelConfig, build_model

    folder = Path(folder) if folder is not None else DEFAULT_MODEL_DIR
    config = read_config(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelFolderError(f"{folder} is not a complete model folder: model.safetensors is missing")
    net = build_model(ModelConfig(**config["model"]))
    net.load_state_dict(load_file(str(weights), device=str(device)))
    return net.to(device).eval()


#: Model settings that must agree between a network and the weights it is initialised from.
ARCHITECTURE_KEYS = ("backbone", "age_head", "gender_head", "hidden", "head_layers", "num_bins", "attention")


def init_state_dict(source: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights (and model settings, when known) of a model folder or a Lightning ``.ckpt`` file."""
    from safetensors.torch import load_file

    source = Path(source)
    if source.suffix == ".ckpt":
        if not source.is_file():
            raise ModelFolderError(f"model.init: checkpoint {source} does not exist")
        return read_checkpoint(source)
    if not source.is_dir():
        raise ModelFolderError(f"model.init: {source} is neither a model folder nor a .ckpt file")
    config = read_config(source)
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise ModelFolderError(f"model.init: {source} has no model.safetensors")
    model = dict(config.get("model") or {})
    model["input_size"] = (config.get("preprocessing") or {}).get("input_size", model.get("input_size"))
    return load_file(str(weights)), model


def load_init_weights(net: AgeGenderNet, source: str | Path) -> None:
    """Start ``net`` from the weights in ``source`` (fine-tuning); the architectures must match exactly."""
    state, model = init_state_dict(source)
    mine = net.cfg.to_dict()
    diffs = [
        f"{k}: {model[k]!r} there, {mine[k]!r} here"
        for k in ARCHITECTURE_KEYS
        if k in model and model[k] is not None and mine.get(k) is not None and model[k] != mine[k]
    ]
    if model.get("input_size") and model["input_size"] != net.input_size:
        diffs.append(f"input_size: {model['input_size']} there, {net.input_size} here")
    if diffs:
        raise ModelFolderError(
            f"model.init: {source} has another architecture than the recipe ({'; '.join(diffs)}); "
            "use a recipe with the same model settings or override them (e.g. model.input_size=...)"
        )
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFolderError(
            f"model.init: {source} does not fit this network (missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]})"
        )


def load_checkpoint_net(path: str | Path) -> AgeGenderNet:
    """The network saved in a Lightning ``.ckpt`` (training's best or last epoch), without Lightning."""
    from agegender.models.model import ModelConfig, build_model

    path = Path(path)
    if not path.is_file():
        raise ModelFolderError(f"checkpoint {path} does not exist")
    state, model = read_checkpoint(path)
    if not model:
        raise ModelFolderError(f"checkpoint {path} has no model settings (hyper_parameters.model)")
    # The weights come from the checkpoint: never load (or download) the backbone's pretrained weights.
    net = build_model(ModelConfig(**{**model, "pretrained": False, "pretrained_path": None}))
    net.load_state_dict(state)
    return net.eval()


# ------------------------------------------------------------------------------------- folder integrity

WEIGHT_FILES = ("model.safetensors", "model.onnx")
#: The ``files`` entry that fingerprints config.json's ``model`` settings: model.onnx has them baked in (the
#: age read-out, for one), so a hand-edited setting would make the two backends answer differently.
MODEL_SETTINGS = "config.json:model"


def settings_digest(config: dict) -> str:
    """Digest of a config's ``model`` settings (key order does not matter)."""
    return hashlib.sha256(json.dumps(config.get("model"), sort_keys=True).encode()).hexdigest()[:32]


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex, first 32 characters): enough to tell two weight files apart."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def record_fingerprints(folder: str | Path) -> dict[str, str]:
    """Store the digests of the weight files in ``config.json``: written together, they belong together.

    Call it right after ``model.onnx`` was exported from ``model.safetensors`` (``package``, ``export``)."""
    folder = Path(folder)
    config = read_config(folder)
    config["files"] = {n: file_digest(folder / n) for n in WEIGHT_FILES if (folder / n).is_file()}
    config["files"][MODEL_SETTINGS] = settings_digest(config)
    tmp = folder / f".config.json.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.replace(folder / "config.json")
    return config["files"]


def check_fingerprints(folder: str | Path, config: dict | None = None) -> None:
    """Refuse a folder whose weight files are not the ones recorded together (e.g. ``model.safetensors``
    replaced but ``model.onnx`` left from another model: the two backends would then disagree silently)."""
    folder = Path(folder)
    config = config if config is not None else read_config(folder)
    recorded = config.get("files") or {}
    changed = [n for n, d in recorded.items() if (folder / n).is_file() and file_digest(folder / n) != d]
    if MODEL_SETTINGS in recorded and recorded[MODEL_SETTINGS] != settings_digest(config):
        changed.append("the model settings in config.json")
    if changed:
        raise ModelFolderError(
            f"{folder}: {', '.join(changed)} changed since the folder was written, so model.onnx may not"
            " answer as model.safetensors and config.json say; re-export with `agegender export "
            f"{folder}` (which records them anew) or restore the folder"
        )


def replace_folder(build, target: str | Path) -> Path:
    """Write a folder beside ``target`` with ``build(tmp_folder)``, then swap it in: a failure leaves the old
    folder exactly as it was, and readers never see a half-written one."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.new-{uuid.uuid4().hex[:8]}"
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target
