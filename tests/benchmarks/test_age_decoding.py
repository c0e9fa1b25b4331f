"""benchmarks/age_decoding.py: the read-outs of the age distribution, and the prior-adjusted one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
age_decoding = pytest.importorskip("age_decoding")

AGES = np.arange(101, dtype=float)


def _logits(peak: float, width: float = 4.0) -> np.ndarray:
    return -((AGES - peak) ** 2) / (2 * width**2)


def test_a_flat_prior_changes_nothing_and_a_prior_of_the_common_ages_moves_a_teenager_away_from_them() -> None:
    logits = np.stack([_logits(16.0), _logits(60.0)])
    flat = age_decoding.read_outs(logits, np.full(101, 1 / 101), (0.5,), temperature=0.25)
    assert flat["mean, temperature 0.25, prior-adjusted 0.5"] == pytest.approx(flat["mean, temperature 0.25"])
    common = np.exp(_logits(27.0, 6.0)) + 1e-3  # training ages crowded around 27
    adjusted = age_decoding.read_outs(logits, common / common.sum(), (0.5, 1.0), temperature=0.25)
    plain = adjusted["mean, temperature 0.25"]
    half, full = (
        adjusted["mean, temperature 0.25, prior-adjusted 0.5"],
        adjusted["mean, temperature 0.25, prior-adjusted 1.0"],
    )
    assert full[0] < half[0] < plain[0]  # the teenager reads younger, the more so the larger tau
    assert full[1] > half[1] > plain[1]  # and the 60-year-old older


class _Rec:
    def __init__(self, age: float) -> None:
        self.age = age


def test_training_prior_weighs_each_source_as_the_recipe_and_evens_out_its_bands(tmp_path: Path) -> None:
    recipe = {"sources": [{"path": "x/kids", "weight": 0.75}, {"path": "y/old", "weight": 0.25}], "balance_age": 1.0}
    (tmp_path / "config.json").write_text(json.dumps({"training": {"recipe": {"data": recipe}}}))
    # "kids": 30 five-year-olds and 10 fifteen-year-olds; evened out, the two bands weigh alike
    parts = {
        "kids": {"train": [_Rec(5)] * 30 + [_Rec(15)] * 10},
        "old": {"train": [_Rec(80)] * 5},
    }
    prior = age_decoding.training_prior(tmp_path, parts, ["kids", "old"], 101)
    assert prior.sum() == pytest.approx(1.0)
    assert prior[5] == pytest.approx(prior[15], rel=0.01)
    kids, old = prior[:30].sum(), prior[60:].sum()  # the smoothing spreads each age over +-8 years
    assert (kids, old) == pytest.approx((0.75, 0.25), abs=0.05)  # not 40 : 5, the sources' sizes
    assert prior.min() > 0  # ages no one was trained on keep a floor
