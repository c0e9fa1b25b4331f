"""Backbone registry: adding a backbone is one function decorated with :func:`register_backbone`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from agegender.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from agegender.errors import AgeGenderError
from agegender.registry import Registry

F = TypeVar("F", bound=Callable)


@dataclass
class Backbone:
    """A feature extractor mapping images (B,3,H,W) to pooled features (B, num_features)."""

    module: nn.Module
    num_features: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    default_size: int = 224
    attention: bool = False  # whether the reference design puts an attention block on the pooled features
    pretrained_on: str | None = "ImageNet-1k classification"  # what its pretrained weights learnt (model cards)


BackboneFactory = Callable[..., Backbone]
#: ``adapt(state, module)``: a weights file's state dict mapped onto ``module``'s own keys (foreign layouts).
WeightsAdapter = Callable[[dict, nn.Module], dict]
BACKBONES: Registry[BackboneFactory] = Registry("backbone")
WEIGHTS_ADAPTERS: dict[str, WeightsAdapter] = {}
#: Keys of classification heads that backbones drop (weights files often carry them).
HEAD_KEY_PREFIXES = ("fc.", "classifier.", "_fc.", "head.", "last_linear.")


def register_backbone(name: str, adapt_weights: WeightsAdapter | None = None) -> Callable[[F], F]:
    """Decorator registering ``factory(pretrained: bool) -> Backbone`` under ``name``; ``adapt_weights`` maps
    a weights file in another layout (e.g. the original authors') onto the module's keys."""

    def deco(factory: F) -> F:
        BACKBONES.register(name)(factory)
        if adapt_weights is not None:
            WEIGHTS_ADAPTERS[name] = adapt_weights
        return factory

    return deco


class WeightsError(AgeGenderError, RuntimeError):
    """Pretrained weights could not be found or loaded; the message says where we looked."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
    """A weights file that does not exist (also a FileNotFoundError, as it always was for MobileFaceNet)."""


def list_backbones() -> list[str]:
    import agegender.models.backbones  # noqa: F401  (registers the built-in backbones)

    return BACKBONES.names()


def create_backbone(name: str, pretrained: bool = False, pretrained_path: str | None = None) -> Backbone:
    """Build a registered backbone; ``pretrained`` loads its reference weights, ``pretrained_path`` a file.

    The file is honoured here, for every backbone alike: a path that does not exist or does not fit is an
    error, never a silently random network.
    """
    import agegender.models.backbones  # noqa: F401  (registers the built-in backbones)

    factory = BACKBONES.get(name)
    if not pretrained_path:
        return factory(pretrained=pretrained)
    path = Path(os.path.expandvars(os.path.expanduser(pretrained_path)))
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{name} weights file not found: {path} (model.pretrained_path). Fix the path, or remove "
            "model.pretrained_path and use model.pretrained=false for a randomly initialised backbone."
        )
    backbone = factory(pretrained=False)
    load_backbone_weights(backbone, path, name)
    return backbone


def _read_state(path: Path) -> dict:
    """A state dict from ``.safetensors`` or a torch file (weights only: no code runs), unwrapped from the
    usual containers (``state_dict``, ``net_state_dict``, ``model``) and DataParallel's ``module.`` prefix."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated files, pickles with code, foreign formats: all a user-facing problem
        raise WeightsError(f"{path} is not a readable weights file ({type(e).__name__}: {e})") from None
    for key in ("state_dict", "net_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_backbone_weights(backbone: Backbone, path: Path, name: str) -> None:
    """Load a weights file into ``backbone.module``: classification-head keys are dropped, everything else
    must fit exactly (names and shapes), so a wrong file is an error instead of a half-initialised network."""
    state = _read_state(path)
    module = backbone.module
    if name in WEIGHTS_ADAPTERS:
        try:
            state = WEIGHTS_ADAPTERS[name](state, module)
        except WeightsError as e:
            raise WeightsError(f"{path}: {e}") from None
    own = module.state_dict()
    state = {k: v for k, v in state.items() if k in own or not k.startswith(HEAD_KEY_PREFIXES)}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{path} does not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}"
        )
    module.load_state_dict(state, strict=False)


def resolve_weights_file(pretrained_path: str | None, default_relative: str, what: str) -> Path:
    """Find a local weights file: an explicit path, else ``$AGEGENDER_WEIGHTS_DIR/<default_relative>``."""
    tried = []
    if pretrained_path:
        p = Path(os.path.expandvars(os.path.expanduser(pretrained_path)))
        if p.is_file():
            return p
        tried.append(str(p))
    env = os.environ.get("AGEGENDER_WEIGHTS_DIR")
    if env:
        p = Path(env) / default_relative
        if p.is_file():
            return p
        tried.append(str(p))
    where = "; ".join(tried) if tried else "nowhere: no path was given and AGEGENDER_WEIGHTS_DIR is not set"
    raise WeightsNotFoundError(
        f"{what} weights not found (looked in {where}). Set model.pretrained_path=FILE or "
        f"AGEGENDER_WEIGHTS_DIR=DIR (containing {default_relative}), or use model.pretrained=false."
    )
