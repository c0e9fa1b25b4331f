"""Tiny end-to-end fits: artefacts, the model folder, `agegender evaluate`, resume and the TrackIO logger."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agegender.cli.main import main
from agegender.models.folder import load_model_folder, read_config
from agegender.training.config import load_recipe
from agegender.training.train import fit

EPOCH_LINE = r"Epoch 1/1 \| train acc \d\.\d{4} MAE [\d.]+ \| val acc \d\.\d{4} MAE [\d.]+ RMSE [\d.]+ score"


@pytest.fixture(scope="module")
def fitted(utk_dir: Path, tmp_path_factory: pytest.TempPathFactory, overrides) -> dict:
    """One 1-epoch scratch_cnn fit shared by the tests below (they must not modify its folder)."""
    out = tmp_path_factory.mktemp("fit") / "run"
    recipe = load_recipe("scratch_cnn", overrides(utk_dir, out))
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        summary = fit(recipe)
    return {"summary": summary, "out": out, "stdout": stdout.getvalue(), "recipe": recipe}


def test_fit_writes_checkpoints_split_summary_and_model(fitted: dict):
    out, summary = fitted["out"], fitted["summary"]
    best = Path(summary["best_checkpoint"])
    assert best.is_file() and best.parent == out / "checkpoints" and best.name.startswith("best-")
    assert (out / "checkpoints" / "last.ckpt").is_file()  # written at the epoch end, not only every N steps
    assert (out / "recipe.yaml").is_file() and (out / "logs" / "metrics.csv").is_file()
    split = json.loads((out / "split.json").read_text())
    assert sorted(set(split["assignment"].values())) == ["test", "train", "val"]
    assert len(split["assignment"]) == 40
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert summary["epochs_completed"] == 1 and summary["global_step"] == 4  # 32 training images, batches of 8
    assert 0 <= summary["best_val_score"] <= 1
    assert summary["model_folder"] == str(out / "model")
    assert summary["trainable_parameters"] > 0


def test_epoch_line_is_printed(fitted: dict):
    import re

    assert re.search(EPOCH_LINE, fitted["stdout"]), fitted["stdout"][-2000:]


def test_model_folder_loads_and_matches_the_best_checkpoint(fitted: dict):
    from agegender.training.module import AgeGenderModule

    folder = Path(fitted["summary"]["model_folder"])
    net = load_model_folder(folder)
    cfg = read_config(folder)
    assert net.input_size == 32 and cfg["preprocessing"]["input_size"] == 32
    assert cfg["model"]["backbone"] == "scratch_cnn" and cfg["training"]["split_file"] == "split.json"
    best = AgeGenderModule.load_from_checkpoint(fitted["summary"]["best_checkpoint"], map_location="cpu").net.eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(net.predict(x), best.predict(x), strict=True):
            torch.testing.assert_close(a, b)


def test_evaluate_cli_on_the_trained_model(fitted: dict, utk_dir: Path, tmp_path: Path, capsys):
    out_json = tmp_path / "metrics" / "eval.json"
    rc = main(["evaluate", fitted["summary"]["model_folder"], "--data", str(utk_dir), "--output", str(out_json)])
    assert rc == 0
    result = json.loads(out_json.read_text())
    assert result["split"] == "test"
    assert result["split_file"] == str(fitted["out"] / "split.json")  # found next to the model folder
    overall = result["overall"]
    assert overall["n"] == 4
    assert set(overall) >= {"mae", "rmse", "age_score", "gender_acc", "gender_f1", "score"}
    assert set(result["slices"]) >= {"age_band", "gender", "race"}
    assert sum(m["n"] for m in result["slices"]["gender"].values()) == 4
    assert "by age_band:" in capsys.readouterr().out
    # the checkpoint evaluates the same as the folder
    out2 = tmp_path / "eval_ckpt.json"
    assert (
        main(
            [
                "evaluate",
                fitted["summary"]["best_checkpoint"],
                "--data",
                str(utk_dir),
                "--split-file",
                str(fitted["out"] / "split.json"),
                "--output",
                str(out2),
            ]
        )
        == 0
    )
    assert json.loads(out2.read_text())["overall"]["mae"] == pytest.approx(overall["mae"], rel=1e-4)


def _csv_epochs(path: Path) -> set[int]:
    with path.open() as f:
        return {int(row["epoch"]) for row in csv.DictReader(f) if row.get("epoch")}


def test_resume_continues_instead_of_restarting(fitted: dict, utk_dir: Path, tmp_path: Path, overrides, capsys):
    run = tmp_path / "run"
    shutil.copytree(fitted["out"], run)
    first_step = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert first_step == fitted["summary"]["global_step"]
    summary = fit(load_recipe("scratch_cnn", overrides(utk_dir, run, epochs=2)), resume=True)
    out = capsys.readouterr().out
    assert summary["epochs_completed"] == 2
    assert summary["global_step"] == 2 * first_step  # one more epoch, not two
    assert "Epoch 2/2" in out and "Epoch 1/2" not in out
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == summary["global_step"] and last["epoch"] == 1
    # the metrics of the first part are kept, not deleted by the new CSV logger
    assert _csv_epochs(run / "logs" / "metrics.part1.csv") == {0}
    assert _csv_epochs(run / "logs" / "metrics.csv") == {1}


def test_resume_without_checkpoint_starts_from_scratch(utk_dir: Path, tmp_path: Path, overrides, capsys):
    recipe = load_recipe(
        "scratch_cnn",
        [
            *overrides(utk_dir, tmp_path / "run"),
            "train.limit_train_batches=1",
            "train.limit_val_batches=1",
            "train.loggers=[]",
        ],
    )
    summary = fit(recipe, resume=True)
    assert "no checkpoint" in capsys.readouterr().err
    assert summary["global_step"] == 1 and summary["epochs_completed"] == 1
    assert not (tmp_path / "run" / "logs").exists()


def _trackio_fit(utk_dir: Path, out: Path, overrides) -> None:
    fit(
        load_recipe(
            "scratch_cnn",
            [
                *overrides(utk_dir, out, loggers="[csv,trackio]"),
                "train.limit_train_batches=2",
                "train.limit_val_batches=1",
            ],
        )
    )


def test_trackio_logger_writes_locally(utk_dir: Path, tmp_path: Path, overrides, cli, monkeypatch, capsys):
    store = tmp_path / "trackio"
    if "trackio" not in sys.modules:  # TRACKIO_DIR is read when trackio is imported
        monkeypatch.setenv("TRACKIO_DIR", str(store))
        _trackio_fit(utk_dir, tmp_path / "run", overrides)
        printed = capsys.readouterr()
        text = printed.out + printed.err
    else:
        r = cli(
            [
                "train",
                "scratch_cnn",
                *overrides(utk_dir, tmp_path / "run", loggers="[csv,trackio]"),
                "train.limit_train_batches=2",
                "train.limit_val_batches=1",
            ],
            TRACKIO_DIR=str(store),
        )
        assert r.returncode == 0, r.stderr[-3000:]
        text = r.stdout + r.stderr
        assert f"dashboard: TRACKIO_DIR={store} trackio show --project agegender" in text
    # trackio's own set-up lines (a coloured hint without the TRACKIO_DIR it needs) go to the debug log only
    assert "\x1b[" not in text and 'trackio show --project "agegender"' not in text
    files = [p for p in store.rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert files, f"nothing written under {store}"
    assert (tmp_path / "run" / "model" / "config.json").is_file()


def test_package_makes_a_self_contained_model_folder(fitted: dict, utk_dir: Path, tmp_path: Path):
    """`agegender package` copies the model, adds ONNX, split.json, metrics and a model card that loads offline."""
    out = tmp_path / "default"
    assert main(["package", str(fitted["out"]), "--data", str(utk_dir), "--output", str(out)]) == 0
    for name in ("model.safetensors", "config.json", "model.onnx", "split.json", "MODEL_CARD.md", "metrics.json"):
        assert (out / name).is_file(), name
    card = (out / "MODEL_CARD.md").read_text()
    # a dataset the card does not know (not UTKFace or APPA-REAL by name): no terms are invented for it
    assert "see the dataset's own terms" in card and "gender 0 = male, 1 = female" in card
    assert "Distilled" not in card  # only distilled models name teachers
    assert "Start: random initialisation." in card  # scratch_cnn
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["overall"]["n"] == 4
    from agegender import Predictor

    faces = Predictor.load(out, backend="onnx").predict(np.zeros((32, 32, 3), np.uint8), detect=False)
    assert len(faces) == 1 and faces[0].age is not None


def test_candidate_row_reports_val_test_and_speed(fitted: dict, utk_dir: Path, tmp_path: Path):
    from agegender.benchmarks.candidates import COLUMNS, candidate_row, update_table

    row = candidate_row(fitted["out"], utk_dir, name="tiny")
    assert row["backbone"] == "scratch_cnn" and row["epochs"] == 1 and row["onnx_faces_per_s"] > 0
    assert 0 <= row["test_gender_acc"] <= 1 and row["test_mae"] >= 0
    md = update_table(row, tmp_path / "c.json")
    update_table({**row, "val_mae": 1.0}, tmp_path / "c.json")  # same name: replaced, not duplicated
    rows = json.loads((tmp_path / "c.json").read_text())
    assert len(rows) == 1 and rows[0]["val_mae"] == 1.0
    assert md.splitlines()[0] == "| " + " | ".join(COLUMNS) + " |"


def test_train_on_val_trains_on_both_and_keeps_the_last_epoch(utk_dir: Path, tmp_path: Path, overrides):
    from agegender.training.module import AgeGenderModule

    out = tmp_path / "refit"
    extra = ["train.epochs=2", "data.train_on_val=true", "data.batch_size=6"]
    recipe = load_recipe("scratch_cnn", overrides(utk_dir, out) + extra)
    with contextlib.redirect_stdout(io.StringIO()):
        summary = fit(recipe)
    assert summary["model_weights"] == "last epoch (data.train_on_val)"
    assert summary["global_step"] == 12  # (32 train + 4 val images) / batches of 6, twice; train alone gives 10
    folder = Path(summary["model_folder"])
    assert read_config(folder)["training"]["best_val_score"] is None
    last = AgeGenderModule.load_from_checkpoint(out / "checkpoints" / "last.ckpt", map_location="cpu").net.eval()
    net = load_model_folder(folder)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(net.predict(x), last.predict(x), strict=True):
            torch.testing.assert_close(a, b)
    from agegender.benchmarks.candidates import candidate_row, update_table

    row = candidate_row(out, utk_dir, name="refit", test=False)  # val was trained on: no val figures
    assert row["val_mae"] is None and row["val_score"] is None and row["epochs"] == 2
    assert "| refit | scratch_cnn |" in update_table(row, tmp_path / "c.json")
    assert " | - | - | " in update_table(row, tmp_path / "c.json")


def test_train_on_val_refuses_early_stopping(utk_dir: Path, tmp_path: Path, overrides):
    from agegender.training.config import RecipeError

    extra = ["data.train_on_val=true", "train.early_stopping=3"]
    recipe = load_recipe("scratch_cnn", overrides(utk_dir, tmp_path / "r") + extra)
    with pytest.raises(RecipeError, match="train_on_val"):
        fit(recipe)
