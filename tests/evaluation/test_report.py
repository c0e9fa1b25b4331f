"""The evaluation report: calibration figures on hand-made arrays, the report folder, and the CLI end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.calibration import calibration_curve

from agegender.evaluation.metrics import compute_metrics, compute_slices
from agegender.evaluation.plots import plot_mae_by_band
from agegender.evaluation.report import (
    COVERAGE_LEVELS,
    PLOTS,
    gender_ece,
    gender_reliability,
    interval_coverage,
    write_report,
)

# ------------------------------------------------------------------------------------------- calibration


def _calibrated(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn with exactly the stated probability: a perfectly calibrated classifier."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    return p, (rng.uniform(0, 1, n) < p).astype(int)


def test_ece_near_zero_when_calibrated() -> None:
    p, y = _calibrated(100_000)
    assert gender_ece(p, y) < 0.01


def test_ece_larger_when_overconfident() -> None:
    p, y = _calibrated(100_000)
    logit = np.log(p / (1 - p))
    sharp = 1 / (1 + np.exp(-4 * logit))  # same ranking, far too sure of itself
    ece_sharp = gender_ece(sharp, y)
    assert ece_sharp > 0.08
    assert ece_sharp > 10 * gender_ece(p, y)
    rel = gender_reliability(sharp, y)
    assert rel["mean_confidence"] > rel["accuracy"]  # over-confident on average


def test_ece_hand_computed() -> None:
    # confidence 0.9 in two bins' worth: all right in one case, half right in the other
    p = np.array([0.9, 0.9, 0.1, 0.1])  # predicted female, female, male, male
    y = np.array([1, 0, 0, 0])  # accuracy 3/4 at confidence 0.9 -> ECE = |0.75 - 0.9| = 0.15
    assert gender_ece(p, y) == pytest.approx(0.15)
    assert gender_ece([1.0, 0.0], [1, 0]) == pytest.approx(0.0)


def test_reliability_table_matches_sklearn_and_counts() -> None:
    p, y = _calibrated(5000, seed=3)
    rel = gender_reliability(p, y, bins=10)
    assert rel["bins"] == 10 and len(rel["table"]) == 10  # every [0.5, 1] bin is populated
    assert sum(r["n"] for r in rel["table"]) == 5000
    conf = np.maximum(p, 1 - p)
    correct = ((p >= 0.5).astype(int) == y).astype(int)
    acc, _ = calibration_curve(correct, 2 * conf - 1, n_bins=10)
    assert np.allclose([r["accuracy"] for r in rel["table"]], acc)
    for r in rel["table"]:
        assert r["lo"] - 1e-9 <= r["confidence"] <= r["hi"] + 1e-9


def test_ece_edge_cases() -> None:
    assert np.isnan(gender_ece([], []))
    assert gender_ece([0.5, 0.5], [1, 0]) == pytest.approx(0.0)  # p=0.5 -> female, conf 0.5, acc 0.5


def test_coverage_of_exact_normal_errors_is_nominal() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    std = rng.uniform(1, 10, n)
    pred = rng.uniform(0, 90, n)
    true = pred + rng.normal(0, std)
    cov = interval_coverage(true, pred, std, COVERAGE_LEVELS)
    assert list(cov) == list(COVERAGE_LEVELS)
    for level, observed in cov.items():
        assert observed == pytest.approx(level, abs=0.01)
    narrow = interval_coverage(true, pred, std / 2, COVERAGE_LEVELS)  # over-confident spread
    assert all(narrow[lv] < cov[lv] - 0.1 for lv in COVERAGE_LEVELS)


def test_coverage_ignores_nan_std() -> None:
    assert interval_coverage([1, 2], [1, 2], [np.nan, np.nan]) == {}
    cov = interval_coverage([10, 10, 10], [10, 30, 10], [1.0, 1.0, np.nan], [0.9])
    assert cov == {0.9: 0.5}


# ------------------------------------------------------------------------------------------- report folder


def _fake_eval(n: int = 200, std_nan: bool = False, race: bool = True, seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    at = rng.integers(1, 90, n).astype(float)
    sd = np.full(n, np.nan) if std_nan else 2 + 0.1 * at
    ap = at + rng.normal(0, 2 + 0.1 * at)
    gt = rng.integers(0, 2, n)
    pf = np.clip(np.where(gt == 1, 0.8, 0.2) + rng.normal(0, 0.2, n), 0, 1)
    rc = rng.integers(0, 5, n).tolist() if race else [None] * n
    gp = (pf >= 0.5).astype(int)
    result = {
        "model": "m",
        "data": "d",
        "split": "all",
        "split_file": None,
        "tta": False,
        "overall": compute_metrics(at, ap, gt, gp),
        "slices": compute_slices(at, ap, gt, gp, rc),
        "read_report": {"source": "d", "format": "utkface", "rows": n, "problems": {}, "notes": {}},
    }
    preds = {
        "age_true": at,
        "age_pred": ap,
        "age_std": sd,
        "gender_true": gt,
        "p_female": pf,
        "race": rc,
        "paths": [f"img/{i}.jpg" for i in range(n)],
    }
    return result, preds


def _check_folder(out: Path, n: int, expect_coverage: bool) -> dict:
    for name in ("metrics.json", "predictions.csv", "REPORT.md"):
        assert (out / name).is_file(), name
    pngs = [v for k, v in PLOTS.items() if expect_coverage or k != "coverage"]
    for name in pngs:
        path = out / name
        assert path.stat().st_size > 10_000, name
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.format == "PNG" and min(im.size) >= 300, (name, im.size)
    assert (out / PLOTS["coverage"]).exists() == expect_coverage
    md = (out / "REPORT.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", md)
    assert set(pngs) <= set(links)
    for link in links:
        assert (out / link).is_file(), link
    metrics = json.loads((out / "metrics.json").read_text())  # strict JSON: NaN would fail here
    assert metrics["overall"]["n"] == n and "calibration" in metrics
    csv = pd.read_csv(out / "predictions.csv")
    assert list(csv.columns) == ["path", "age_true", "age_pred", "age_std", "gender_true", "p_female", "race"]
    assert len(csv) == n
    return metrics


def test_write_report_creates_every_file(tmp_path: Path) -> None:
    result, preds = _fake_eval()
    before = json.dumps(result, sort_keys=True)
    report = write_report(result, preds, tmp_path / "rep")
    assert report == tmp_path / "rep" / "REPORT.md"
    assert json.dumps(result, sort_keys=True) == before  # the caller's result is not modified
    metrics = _check_folder(tmp_path / "rep", 200, expect_coverage=True)
    cal = metrics["calibration"]
    assert cal["gender"]["ece"] == pytest.approx(gender_ece(preds["p_female"], preds["gender_true"]))
    assert [r["nominal"] for r in cal["age_interval"]["levels"]] == list(COVERAGE_LEVELS)
    md = report.read_text()
    for text in ("## Overall", "### By age band", "### By gender", "### By race", "ECE", "| 95% |"):
        assert text in md, text


def test_write_report_nan_std_and_no_race(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    write_report(*_fake_eval(std_nan=False), out)
    assert (out / PLOTS["coverage"]).exists()
    result, preds = _fake_eval(n=50, std_nan=True, race=False)
    write_report(result, preds, out)  # rewriting the same folder drops the stale coverage plot
    metrics = _check_folder(out, 50, expect_coverage=False)
    assert metrics["calibration"]["age_interval"]["available"] is False
    md = (out / "REPORT.md").read_text()
    assert "Skipped" in md and "No race labels" in md
    csv = pd.read_csv(out / "predictions.csv")
    assert csv["age_std"].isna().all() and csv["race"].isna().all()


# ------------------------------------------------------------------------------------------- CLI end to end


@pytest.fixture(scope="module")
def tiny_model_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from agegender.models.folder import save_model_folder
    from agegender.models.model import ModelConfig, build_model

    tmp = tmp_path_factory.mktemp("e2e")
    model = tmp / "m"
    save_model_folder(build_model(ModelConfig(backbone="scratch_cnn", input_size=32)), model)
    data = tmp / "utk"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        age, gender, race = int(rng.integers(1, 90)), i % 2, i % 5
        pixels = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)  # distinct bytes: no duplicate dropping
        Image.fromarray(pixels).save(data / f"{age}_{gender}_{race}_2017011{i:02d}000000.jpg.chip.jpg")
    return model, data


def test_cli_evaluate_report_end_to_end(tiny_model_and_data: tuple[Path, Path], tmp_path: Path) -> None:
    from agegender.cli.main import main

    model, data = tiny_model_and_data
    out = tmp_path / "report"
    rc = main(["evaluate", str(model), "--data", str(data), "--split", "all", "--report", str(out)])
    assert rc == 0
    metrics = _check_folder(out, 30, expect_coverage=True)  # scratch_cnn defaults to the distribution head
    assert metrics["split"] == "all" and set(metrics["slices"]["race"]) == {
        "White",
        "Black",
        "Asian",
        "Indian",
        "Others",
    }


def test_mae_plot_adds_the_signed_error_panel_when_bands_have_it(tmp_path: Path) -> None:
    result, _ = _fake_eval()
    assert all("mean_error" in v for v in result["slices"]["age_band"].values())
    with_bias = plot_mae_by_band(result, tmp_path / "with.png")
    stripped = {
        **result,
        "slices": {
            "age_band": {
                k: {a: b for a, b in v.items() if a != "mean_error"} for k, v in result["slices"]["age_band"].items()
            }
        },
    }
    without = plot_mae_by_band(stripped, tmp_path / "without.png")
    with Image.open(tmp_path / with_bias) as a, Image.open(tmp_path / without) as b:
        assert a.size[0] == b.size[0] and a.size[1] > 1.4 * b.size[1]  # a second panel below the MAE bars
