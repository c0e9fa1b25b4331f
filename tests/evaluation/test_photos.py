"""End-to-end evaluation on labelled photos: estimates, the main face, interval coverage, reasons for misses."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender.data.records import FaceRecord
from agegender.evaluation.photos import _coverage, evaluate_photos
from agegender.inference.predictor import Predictor

ASTRONAUT = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load()


def test_photos_with_and_without_a_face(predictor: Predictor, tmp_path: Path) -> None:
    shutil.copy(ASTRONAUT, tmp_path / "astro.jpg")
    Image.fromarray(np.full((100, 100, 3), 90, np.uint8)).save(tmp_path / "wall.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    # the face becomes ~38 px: flagged small, still estimated (at 160 px, ~30 px, the shipped model's gender for
    # this one photo is a coin toss: P(female) 0.39, the model before 0.63)
    small = Image.open(ASTRONAUT).resize((200, 200))
    small.save(tmp_path / "small.png")
    records = [
        FaceRecord(tmp_path / "astro.jpg", 35.0, 1),
        FaceRecord(tmp_path / "wall.png", 20.0, 0),
        FaceRecord(tmp_path / "broken.jpg", 40.0, 1),
        FaceRecord(tmp_path / "small.png", 35.0, 1),
        FaceRecord(tmp_path / "unlabelled.jpg"),  # no labels: not counted
    ]
    res = evaluate_photos(predictor, records, progress=False)
    assert res["photos"] == 4 and res["estimated"] == 2
    reasons = {Path(m["path"]).name: m["reason"] for m in res["without_estimate"]}
    assert reasons["wall.png"] == "no face found" and "broken.jpg" in reasons
    assert res["overall"]["n"] == 2 and res["overall"]["gender_acc"] == 1.0
    assert res["flagged"] == 1 and res["flags"].get("small") == 1
    rows = {Path(r["path"]).name: r for r in res["rows"]}
    assert rows["small.png"]["reasons"] and not rows["astro.jpg"]["reasons"]
    assert res["interval_coverage"]["all"]["n"] == 2


def test_coverage_counts_true_ages_inside_the_interval_per_flag() -> None:
    rows = [
        {"age_true": 30, "age": 30, "age_low": 25, "age_high": 35, "reasons": []},
        {"age_true": 50, "age": 30, "age_low": 25, "age_high": 35, "reasons": []},
        {"age_true": 10, "age": 13, "age_low": 5, "age_high": 15, "reasons": ["small"]},
        {"age_true": 10, "age": 10, "age_low": None, "age_high": None, "reasons": ["blurry"]},
    ]
    cov = _coverage(rows)
    assert cov["all"] == {"n": 3, "coverage": pytest.approx(2 / 3), "mae": pytest.approx(23 / 3)}
    assert cov["ok"]["coverage"] == 0.5 and cov["ok"]["mae"] == 10
    assert cov["flagged"] == {"n": 1, "coverage": 1.0, "mae": 3}
    assert cov["small"]["n"] == 1 and cov["blurry"] == {"n": 0, "coverage": None, "mae": None}
