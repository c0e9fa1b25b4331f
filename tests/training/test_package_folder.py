"""`agegender package` replaces a model folder as a whole, and a folder whose weight files no longer belong
together is refused: the README's reproduce sequence (train -> package) on tiny data."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agegender.cli.main import main
from agegender.inference.predictor import Predictor
from agegender.models.folder import MODEL_SETTINGS, ModelFolderError, check_fingerprints
from agegender.training.config import load_recipe
from agegender.training.package import package_run
from agegender.training.train import fit


@pytest.fixture(scope="module")
def two_runs(utk_dir: Path, tmp_path_factory: pytest.TempPathFactory, overrides) -> tuple[Path, Path]:
    """Two tiny finished runs (different seeds) trained with a given split file, as the README's recipe does."""
    root = tmp_path_factory.mktemp("pkg")
    runs = []
    for seed in (1, 2):
        out = root / f"run{seed}"
        extra = [f"train.seed={seed}", f"data.split_file={root / 'shared_split.json'}"]
        with contextlib.redirect_stdout(io.StringIO()):
            fit(load_recipe("scratch_cnn", [*overrides(utk_dir, out), *extra]))
        runs.append(out)
    return runs[0], runs[1]


def test_run_folder_records_its_split_even_with_a_given_split_file(two_runs):
    for run in two_runs:
        assert (run / "split.json").is_file()


def test_package_writes_a_consistent_folder_and_replaces_it_whole(two_runs, utk_dir, tmp_path):
    first, second = two_runs
    out = tmp_path / "model"
    package_run(first, utk_dir, out)
    config = json.loads((out / "config.json").read_text())
    assert set(config["files"]) == {"model.safetensors", "model.onnx", MODEL_SETTINGS}
    assert (out / "MODEL_CARD.md").is_file() and json.loads((out / "metrics.json").read_text())["model"] == str(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # A package that fails half-way (here: its data is gone) leaves the old folder exactly as it was.
    with pytest.raises(Exception):  # noqa: B017 - whatever the failure, nothing may be half-replaced
        package_run(second, tmp_path / "no_such_data", out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.")]  # no temp folders left
    package_run(second, utk_dir, out)
    assert (out / "model.safetensors").read_bytes() != before["model.safetensors"]
    check_fingerprints(out)


def test_mismatched_weight_files_are_refused_until_re_exported(two_runs, utk_dir, tmp_path, capsys):
    first, second = two_runs
    out = tmp_path / "model"
    package_run(first, utk_dir, out)
    shutil.copy2(second / "model" / "model.safetensors", out / "model.safetensors")  # ONNX left from run 1
    for backend in ("onnx", "torch"):
        with pytest.raises(ModelFolderError, match="re-export"):
            Predictor.load(out, backend=backend)
    assert main(["export", str(out)]) == 0  # records the pair anew
    Predictor.load(out, backend="onnx")


def _batch(size: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(4, 3, size, size)).astype(np.float32)


def test_package_with_an_age_temperature_ships_it_in_both_backends(two_runs, utk_dir, tmp_path):
    first, _ = two_runs
    plain, sharp = tmp_path / "plain", tmp_path / "sharp"
    package_run(first, utk_dir, plain)
    package_run(first, utk_dir, sharp, age_temperature=0.3)
    config = json.loads((sharp / "config.json").read_text())
    assert config["model"]["age_temperature"] == 0.3
    assert "softmax(logits / 0.3)" in (sharp / "MODEL_CARD.md").read_text()
    assert "softmax(logits" not in (plain / "MODEL_CARD.md").read_text()
    results = {}
    for folder in (plain, sharp):
        for backend in ("onnx", "torch"):
            engine = Predictor.load(folder, backend=backend).engine
            results[folder.name, backend] = engine.run(_batch(engine.pre.size))
    for name in ("plain", "sharp"):  # the ONNX graph carries the read-out: both backends agree
        for a, b in zip(results[name, "onnx"], results[name, "torch"], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-3)
    age_plain, std_plain, pf_plain = results["plain", "torch"]
    age_sharp, std_sharp, pf_sharp = results["sharp", "torch"]
    assert np.abs(age_sharp - age_plain).max() > 1e-3  # another answer ...
    np.testing.assert_allclose(std_sharp, std_plain, rtol=1e-5)  # ... with the same spread and gender
    np.testing.assert_allclose(pf_sharp, pf_plain, rtol=1e-5)


def test_a_hand_edited_read_out_is_refused_until_re_exported(two_runs, utk_dir, tmp_path):
    out = tmp_path / "model"
    package_run(two_runs[0], utk_dir, out)
    config = json.loads((out / "config.json").read_text())
    config["model"]["age_temperature"] = 0.5  # model.onnx still reads the plain mean
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="model settings"):
        Predictor.load(out, backend="onnx")
    assert main(["export", str(out)]) == 0
    Predictor.load(out, backend="onnx")


def test_package_refuses_a_bad_temperature(two_runs, utk_dir, tmp_path):
    with pytest.raises(ValueError, match="> 0"):
        package_run(two_runs[0], utk_dir, tmp_path / "model", age_temperature=0.0)
    assert not (tmp_path / "model").exists()


def test_package_cli_takes_the_temperature_and_stays_quiet(two_runs, utk_dir, tmp_path, capsys):
    out = tmp_path / "model"
    args = ["package", str(two_runs[0]), "--data", str(utk_dir), "--output", str(out), "--age-temperature", "0.3"]
    assert main([*args, "-q"]) == 0
    captured = capsys.readouterr()
    assert json.loads((out / "config.json").read_text())["model"]["age_temperature"] == 0.3
    assert "predicting" not in captured.err and "it/s" not in captured.err
    assert f"wrote {out}" in captured.out
