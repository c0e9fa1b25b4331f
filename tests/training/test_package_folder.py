"""`agegender package` replaces a model folder as a whole, and a folder whose weight files no longer belong
together is refused: the README's reproduce sequence (train -> package) on tiny data."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest

from agegender.cli.main import main
from agegender.inference.predictor import Predictor
from agegender.models.folder import ModelFolderError, check_fingerprints
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
    assert set(config["files"]) == {"model.safetensors", "model.onnx"}
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
