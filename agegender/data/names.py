"""Short, unique dataset names for tables and logs: one rule for training, validation and evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["dataset_name", "unique_names"]

_GENERIC_STEMS = {"labels", "train", "manifest", "data", "images", "test"}


def dataset_name(path: str | Path) -> str:
    """``utkface`` for ``../shared/data/utkface``, ``appa_real_train`` for ``.../appa_real_train/labels.csv``."""
    p = Path(str(path).rstrip("/"))
    if p.suffix and p.stem in _GENERIC_STEMS:
        p = p.parent
    return (p.stem if p.suffix else p.name) or "data"


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with a repeated one suffixed by its position (``utkface``, ``utkface_2``)."""
    out: list[str] = []
    for i, n in enumerate(names):
        out.append(f"{n}_{i + 1}" if n in out else n)
    return out
