"""Backbone registry: adding a backbone is one function decorated with :func:`register_backbone`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from agegender.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from agegender.registry import Registry


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
BACKBONES: Registry[BackboneFactory] = Registry("backbone")
#: Decorator registering a backbone factory under a name (see agegender/models/backbones.py).
register_backbone = BACKBONES.register


class WeightsError(RuntimeError):
    """Pretrained weights could not be found or loaded; the message says where we looked."""


def list_backbones() -> list[str]:
    import agegender.models.backbones  # noqa: F401  (registers the built-in backbones)

    return BACKBONES.names()


def create_backbone(name: str, pretrained: bool = False, pretrained_path: str | None = None) -> Backbone:
    """Build a registered backbone; ``pretrained`` loads its reference weights, ``pretrained_path`` a file."""
    import agegender.models.backbones  # noqa: F401  (registers the built-in backbones)

    return BACKBONES.get(name)(pretrained=pretrained, pretrained_path=pretrained_path)


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
    raise WeightsError(
        f"{what} weights not found (looked in {where}). Set model.pretrained_path=FILE or "
        f"AGEGENDER_WEIGHTS_DIR=DIR (containing {default_relative}), or use model.pretrained=false."
    )
