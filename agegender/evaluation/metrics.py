"""The standard figures and the competition score, overall and per slice (age band, gender, race)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, root_mean_squared_error

from agegender.data.records import GENDER_NAMES, RACE_NAMES
from agegender.data.splits import AGE_BANDS, age_band

RMSE_CAP = 30.0


def age_score(rmse: float) -> float:
    """Competition age score: 1 - min(RMSE, 30) / 30."""
    return 1.0 - min(rmse, RMSE_CAP) / RMSE_CAP


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b <= 0 else 2 * a * b / (a + b)


def compute_metrics(
    age_true: Sequence[float],
    age_pred: Sequence[float],
    gender_true: Sequence[int],
    gender_pred: Sequence[int],
) -> dict[str, float]:
    """MAE, RMSE, age_score, gender accuracy, gender macro F1 and score = harmonic mean(F1, age_score)."""
    at, ap = np.asarray(age_true, float), np.asarray(age_pred, float)
    gt, gp = np.asarray(gender_true, int), np.asarray(gender_pred, int)
    if len(at) == 0:
        return {"n": 0}
    rmse = float(root_mean_squared_error(at, ap))
    f1 = float(f1_score(gt, gp, average="macro", labels=[0, 1], zero_division=0))
    a_score = age_score(rmse)
    return {
        "n": int(len(at)),
        "mae": float(mean_absolute_error(at, ap)),
        "rmse": rmse,
        "age_score": a_score,
        "gender_acc": float(accuracy_score(gt, gp)),
        "gender_f1": f1,
        "score": harmonic_mean(f1, a_score),
    }


def _slice_metrics(mask: np.ndarray, at, ap, gt, gp) -> dict[str, float]:
    m = compute_metrics(at[mask], ap[mask], gt[mask], gp[mask])
    if m.get("n"):
        m["mean_error"] = float(np.mean(ap[mask] - at[mask]))  # bias: >0 means over-estimated ages
    return m


def compute_slices(
    age_true: Sequence[float],
    age_pred: Sequence[float],
    gender_true: Sequence[int],
    gender_pred: Sequence[int],
    race: Sequence[int | None] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """The same figures per age band, per gender and (when known) per race."""
    at, ap = np.asarray(age_true, float), np.asarray(age_pred, float)
    gt, gp = np.asarray(gender_true, int), np.asarray(gender_pred, int)
    bands = np.array([age_band(a) for a in at])
    out: dict[str, dict[str, dict[str, float]]] = {"age_band": {}, "gender": {}}
    for lo, _hi in AGE_BANDS:
        name = age_band(lo)
        mask = bands == name
        if mask.any():
            out["age_band"][name] = _slice_metrics(mask, at, ap, gt, gp)
    for g, name in GENDER_NAMES.items():
        mask = gt == g
        if mask.any():
            m = _slice_metrics(mask, at, ap, gt, gp)
            # Macro F1 (and so the score) is meaningless inside one true class: keep accuracy (= recall) only.
            m["gender_f1"] = m["score"] = None
            out["gender"][name] = m
    if race is not None and any(r is not None for r in race):
        rc = np.array([-1 if r is None else int(r) for r in race])
        out["race"] = {}
        for r, name in RACE_NAMES.items():
            mask = rc == r
            if mask.any():
                out["race"][name] = _slice_metrics(mask, at, ap, gt, gp)
    return out


def format_metrics(m: dict[str, float | None]) -> str:
    if not m.get("n"):
        return "n=0"
    parts = [f"n={m['n']}"]
    for key, label in (
        ("mae", "MAE"),
        ("rmse", "RMSE"),
        ("age_score", "age_score"),
        ("gender_acc", "gender_acc"),
        ("gender_f1", "macroF1"),
        ("score", "score"),
    ):
        if m.get(key) is not None:
            parts.append(f"{label}={m[key]:.4f}" if key not in ("mae", "rmse") else f"{label}={m[key]:.3f}")
    return " ".join(parts)
