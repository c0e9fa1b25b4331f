"""Metrics: MAE, RMSE, the capped age score, macro F1, accuracy, the harmonic-mean score, and slices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from agegender.evaluation.metrics import age_score, compute_metrics, compute_slices, format_metrics, harmonic_mean

AGE_TRUE = [10, 20, 30, 40]
AGE_PRED = [12, 18, 33, 40]  # errors +2, -2, +3, 0
G_TRUE = [0, 1, 1, 0]
G_PRED = [0, 1, 0, 0]


def test_compute_metrics_hand_values() -> None:
    m = compute_metrics(AGE_TRUE, AGE_PRED, G_TRUE, G_PRED)
    assert m["n"] == 4
    assert m["mae"] == pytest.approx(7 / 4)
    rmse = math.sqrt((4 + 4 + 9 + 0) / 4)
    assert m["rmse"] == pytest.approx(rmse)
    assert m["age_score"] == pytest.approx(1 - rmse / 30)
    assert m["gender_acc"] == pytest.approx(0.75)
    # class 0: P 2/3, R 1 -> F1 0.8; class 1: P 1, R 1/2 -> F1 2/3
    f1 = (0.8 + 2 / 3) / 2
    assert m["gender_f1"] == pytest.approx(f1)
    a = 1 - rmse / 30
    assert m["score"] == pytest.approx(2 * f1 * a / (f1 + a))


def test_compute_metrics_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    at = rng.uniform(1, 90, 500)
    ap = at + rng.normal(0, 7, 500)
    gt = rng.integers(0, 2, 500)
    gp = np.where(rng.random(500) < 0.85, gt, 1 - gt)
    m = compute_metrics(at, ap, gt, gp)
    assert m["mae"] == pytest.approx(np.mean(np.abs(at - ap)))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((at - ap) ** 2)))
    assert m["gender_acc"] == pytest.approx(accuracy_score(gt, gp))
    assert m["gender_f1"] == pytest.approx(f1_score(gt, gp, average="macro"))
    assert m["gender_f1"] != pytest.approx(f1_score(gt, gp))  # macro, not the binary F1 of class 1


@pytest.mark.parametrize(("rmse", "expected"), [(0, 1.0), (3, 0.9), (15, 0.5), (30, 0.0), (45, 0.0), (1e9, 0.0)])
def test_age_score_capped_at_30(rmse: float, expected: float) -> None:
    assert age_score(rmse) == pytest.approx(expected)


def test_rmse_45_gives_zero_age_score_and_zero_score() -> None:
    m = compute_metrics([0, 0], [45, -45], [0, 1], [0, 1])
    assert m["rmse"] == pytest.approx(45)
    assert m["age_score"] == 0.0
    assert m["gender_f1"] == pytest.approx(1.0)
    assert m["score"] == 0.0


def test_harmonic_mean() -> None:
    assert harmonic_mean(1.0, 0.5) == pytest.approx(2 / 3)
    assert harmonic_mean(0.8, 0.8) == pytest.approx(0.8)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(1.0, 0.0) == 0.0


def test_perfect_predictions() -> None:
    m = compute_metrics(AGE_TRUE, AGE_TRUE, G_TRUE, G_TRUE)
    assert (m["mae"], m["rmse"], m["age_score"], m["gender_acc"], m["gender_f1"], m["score"]) == (0, 0, 1, 1, 1, 1)


def test_empty_inputs() -> None:
    assert compute_metrics([], [], [], []) == {"n": 0}
    assert format_metrics({"n": 0}) == "n=0"


def test_format_metrics() -> None:
    text = format_metrics(compute_metrics(AGE_TRUE, AGE_PRED, G_TRUE, G_PRED))
    assert text.startswith("n=4 MAE=1.750 RMSE=2.062")
    assert "gender_acc=0.7500" in text


# ---------------------------------------------------------------- slices

SLICE_TRUE = [5, 8, 25, 27, 75, 80]
SLICE_PRED = [9, 10, 24, 25, 75, 90]  # children over-estimated, 20-29 under-estimated
SLICE_G_TRUE = [0, 1, 0, 1, 1, 1]
SLICE_G_PRED = [0, 1, 1, 1, 1, 0]


def test_slices_by_age_band_and_gender() -> None:
    s = compute_slices(SLICE_TRUE, SLICE_PRED, SLICE_G_TRUE, SLICE_G_PRED)
    assert set(s) == {"age_band", "gender"}
    assert list(s["age_band"]) == ["0-12", "20-29", "70+"]  # only bands with data, in band order
    kids = s["age_band"]["0-12"]
    assert kids["n"] == 2
    assert kids["mae"] == pytest.approx(3.0)
    assert kids["mean_error"] == pytest.approx(3.0)  # > 0: over-estimated
    assert s["age_band"]["20-29"]["mean_error"] == pytest.approx(-1.5)  # < 0: under-estimated
    assert s["age_band"]["70+"]["rmse"] == pytest.approx(math.sqrt(50))
    assert s["gender"]["male"]["n"] == 2 and s["gender"]["female"]["n"] == 4
    assert s["gender"]["male"]["gender_acc"] == pytest.approx(0.5)
    assert s["gender"]["female"]["mae"] == pytest.approx(np.mean([2, 2, 0, 10]))
    assert s["gender"]["female"]["mean_error"] == pytest.approx(np.mean([2, -2, 0, 10]))


def test_race_slices_only_when_known() -> None:
    args = (SLICE_TRUE, SLICE_PRED, SLICE_G_TRUE, SLICE_G_PRED)
    assert "race" not in compute_slices(*args, race=None)
    assert "race" not in compute_slices(*args, race=[None] * 6)
    s = compute_slices(*args, race=[0, 0, 2, None, 2, None])
    assert set(s["race"]) == {"White", "Asian"}
    assert s["race"]["White"]["n"] == 2 and s["race"]["Asian"]["n"] == 2
    assert s["race"]["Asian"]["mean_error"] == pytest.approx(np.mean([24 - 25, 75 - 75]))
