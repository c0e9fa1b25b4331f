"""Age intervals: the central normal interval ``age ± z(level) * std * scale``, and how to fit ``scale``.

The model's spread is learned on UTKFace chips; on flagged faces (small, blurry, turned, ...) its errors are
larger than that spread says, so each reason gets a widening factor stored in the model folder's
``config.json``::

    "calibration": {"interval_scale": {"ok": 1.0, "small": 1.6, "blurry": 1.4, ...},
                    "level": 0.8, "fitted_on": "what the factors were measured on"}

A face uses the largest factor among its reasons (``ok`` when it has none, and for reasons not listed);
without the key every factor is 1. :func:`fit_interval_scale` finds a factor from measured errors, and
:func:`interval_coverage` is the one definition of "how often the interval holds the true age".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = ["INTERVAL_LEVEL", "central_z", "fit_interval_scale", "interval_coverage", "interval_scale"]

#: Age intervals are central 80% intervals of the predicted age distribution (normal approximation).
INTERVAL_LEVEL = 0.8


def central_z(level: float = INTERVAL_LEVEL) -> float:
    """z such that ``mean ± z * std`` holds ``level`` of a normal distribution (0.8 -> 1.2816)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    return NormalDist().inv_cdf(0.5 + level / 2)


def interval_scale(config: Mapping[str, Any] | None, reasons: Sequence[str] = ()) -> float:
    """The interval widening factor for a face flagged with ``reasons`` (none: an ok face)."""
    scales = ((config or {}).get("calibration") or {}).get("interval_scale") or {}
    base = float(scales.get("ok", 1.0))
    return max([base, *(float(scales.get(r, base)) for r in reasons)]) if reasons else base


def _finite(abs_err: Sequence[float], std: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    err, sd = np.abs(np.asarray(abs_err, float)), np.asarray(std, float)
    if err.shape != sd.shape:
        raise ValueError(f"abs_err and std differ in shape: {err.shape} vs {sd.shape}")
    keep = np.isfinite(err) & np.isfinite(sd) & (sd >= 0)
    return err[keep], sd[keep]


def interval_coverage(
    abs_err: Sequence[float], std: Sequence[float], scale: float = 1.0, level: float = INTERVAL_LEVEL
) -> float:
    """Fraction of faces with ``|err| <= z(level) * std * scale``; NaN when no row has a finite spread.

    A calibrated spread gives ``level``; less means the intervals are too narrow (over-confident).
    """
    err, sd = _finite(abs_err, std)
    if len(err) == 0:
        return math.nan
    return float(np.mean(err <= central_z(level) * sd * scale))


def fit_interval_scale(abs_err: Sequence[float], std: Sequence[float], level: float = INTERVAL_LEVEL) -> float:
    """The smallest ``s`` with ``interval_coverage(abs_err, std, s, level) >= level``.

    Each face needs ``s >= |err| / (z * std)``; the answer is the k-th smallest of those ratios with
    k = ceil(level * n). Faces with zero spread and zero error need nothing; zero spread with an error
    cannot be covered by any factor.
    """
    err, sd = _finite(abs_err, std)
    if len(err) == 0:
        raise ValueError("no faces with a finite error and spread to fit an interval scale on")
    z = central_z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        need = np.where(err == 0, 0.0, err / (z * sd))
    k = max(1, math.ceil(level * len(need) - 1e-9))
    scale = float(np.sort(need)[k - 1])
    if not math.isfinite(scale):
        raise ValueError("too many faces have zero spread but an error: no scale reaches the level")
    return scale * (1 + 1e-12)  # so z * std * scale, rounded, still reaches the face that sets it
