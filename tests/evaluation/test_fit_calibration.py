"""Fitting interval widening factors per quality flag, cross-validated, stored where prediction reads them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agegender.cli.main import main
from agegender.evaluation.fit_calibration import calibrate, fit_scales, write_calibration
from agegender.inference.calibration import central_z
from agegender.inference.predictor import Predictor
from agegender.models.folder import DEFAULT_MODEL_DIR

ASTRONAUT = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"
Z = central_z(0.8)


def _rows(n: int, ratio: float, reasons: list[str], seed: int) -> list[dict]:
    """Faces whose |error| / (z * std) is spread evenly up to ``2 * ratio``: the 80% factor is ~1.6 * ratio."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        std = 3.0
        err = (i + 0.5) / n * 2 * ratio * Z * std
        out.append(
            {
                "digest": f"{rng.integers(0, 2**32):08x}",
                "variant": "x",
                "age_true": 30.0,
                "age": 30.0 + err,
                "std": std,
                "reasons": reasons,
            }
        )
    return out


def test_fit_scales_per_flag_never_below_ok():
    rows = _rows(200, 0.6, [], 0) + _rows(100, 1.5, ["small"], 1) + _rows(10, 0.1, ["turned"], 2)
    scales = fit_scales(rows)
    assert scales["ok"] == pytest.approx(0.96, abs=0.02)
    assert scales["small"] == pytest.approx(2.4, abs=0.05)
    # too few "turned" faces for a factor of their own: the pooled flagged factor, not their optimistic 0.16
    assert scales["turned"] == scales["flagged"] and scales["turned"] >= scales["ok"]


def test_cross_validated_coverage_is_near_the_level_after_fitting():
    rows = _rows(400, 0.6, [], 3) + _rows(300, 1.5, ["blurry"], 4)
    result = calibrate(rows)
    assert result["coverage_raw"]["blurry"]["coverage"] < 0.6  # too narrow before
    assert result["coverage_cross_validated"]["blurry"]["coverage"] == pytest.approx(0.8, abs=0.05)
    assert result["coverage_cross_validated"]["ok"]["coverage"] == pytest.approx(0.8, abs=0.05)


def test_written_factors_widen_flagged_faces_in_prediction(tmp_path: Path):
    import cv2

    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    config = json.loads((model / "config.json").read_text())
    config.pop("calibration", None)  # start from the network's own spread
    (model / "config.json").write_text(json.dumps(config))
    photo = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    tiny = cv2.resize(photo, (160, 160), interpolation=cv2.INTER_AREA)  # face ~30 px: flagged small
    (plain,) = Predictor.load(model).predict(tiny)
    rows = _rows(100, 0.5, [], 5) + _rows(100, 2.0, ["small"], 6)
    write_calibration(model, calibrate(rows), "synthetic test rows")
    config = json.loads((model / "config.json").read_text())
    assert config["calibration"]["fitted_on"] == "synthetic test rows"
    small = config["calibration"]["interval_scale"]["small"]
    assert small > 2.5
    (face,) = Predictor.load(model).predict(tiny)
    assert "small" in face.reasons and face.age == plain.age
    assert face.age_high - face.age == pytest.approx(small * (plain.age_high - plain.age), rel=0.02)


def test_cli_calibrate_reports_and_writes(tmp_path: Path, capsys):
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(ASTRONAUT, photos / "astro.jpg")
    (photos / "labels.csv").write_text("path,age,gender\nastro.jpg,35,1\n")
    code = main(["calibrate", str(model), "--data", str(photos), "--write", "-q", "--output", str(tmp_path / "c.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "coverage" in out and "wrote the factors" in out
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["faces"] == 3  # the photo, its shrunk and its blurred copy all got an estimate
    assert "calibration" in json.loads((model / "config.json").read_text())


def test_cli_calibrate_copies_factors_from_another_model(tmp_path: Path, capsys):
    """A refit on train + val borrows the factors of the same recipe calibrated on val: prediction then widens
    its intervals by them, and the card says where they came from."""
    source, refit = tmp_path / "source", tmp_path / "refit"
    shutil.copytree(DEFAULT_MODEL_DIR, source)
    shutil.copytree(DEFAULT_MODEL_DIR, refit)
    write_calibration(source, calibrate(_rows(100, 0.5, [], 5) + _rows(100, 2.0, ["small"], 6)), "synthetic rows")
    config = json.loads((refit / "config.json").read_text())
    config.pop("calibration", None)
    (refit / "config.json").write_text(json.dumps(config))
    assert main(["calibrate", str(refit), "--factors-from", str(source), "--write"]) == 0
    assert "wrote the factors" in capsys.readouterr().out
    copied = json.loads((refit / "config.json").read_text())["calibration"]
    expected = json.loads((source / "config.json").read_text())["calibration"]
    assert copied["interval_scale"] == expected["interval_scale"]
    assert copied["fitted_on"].startswith("synthetic rows, for the model in") and "(copied)" in copied["fitted_on"]
    assert "synthetic rows, for the model in" in (refit / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize(
    "extra", [[], ["--write", "--data", "x"], ["--factors-from", "SRC"], ["--factors-from", "NOCAL", "--write"]]
)
def test_cli_calibrate_refuses_unclear_requests(tmp_path: Path, capsys, extra: list[str]):
    """No --data and no --factors-from, --factors-from with --data or without --write, or a source without
    factors: exit 2 with a message, and the model's config is untouched."""
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    nocal = tmp_path / "nocal"
    shutil.copytree(DEFAULT_MODEL_DIR, nocal)
    config = json.loads((nocal / "config.json").read_text())
    config.pop("calibration", None)
    (nocal / "config.json").write_text(json.dumps(config))
    before = (model / "config.json").read_text()
    extra = [{"SRC": str(DEFAULT_MODEL_DIR), "NOCAL": str(nocal)}.get(a, a) for a in extra]
    if "--data" in extra:
        extra += ["--factors-from", str(DEFAULT_MODEL_DIR)]
    assert main(["calibrate", str(model), *extra]) == 2
    assert "error" in capsys.readouterr().err.lower()
    assert (model / "config.json").read_text() == before
