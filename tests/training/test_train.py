"""`agegender train` refuses what would fail later, before any training: broken checkpoints, unwritable run
folders, data without labels."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agegender.cli.main import main
from agegender.models.checkpoint import CheckpointError, check_checkpoint


def _broken_last(out: Path, content: bytes) -> Path:
    ckpt = out / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(content)
    return ckpt


def test_resume_from_a_broken_last_ckpt_says_which_file_and_what_to_do(
    utk_dir: Path, tmp_path: Path, overrides, capsys
):
    # It used to end in a raw EOFError from deep inside torch.load.
    out = tmp_path / "run"
    ckpt = _broken_last(out, b"")
    assert main(["train", "scratch_cnn", *overrides(utk_dir, out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: checkpoint {ckpt} is broken: it is empty (0 bytes)")
    assert "Delete it" in err and "Traceback" not in err
    (out / "checkpoints" / "best-epoch=00.ckpt").write_bytes(b"")
    assert main(["train", "scratch_cnn", *overrides(utk_dir, out), "--resume"]) == 2
    assert "copy one of best-epoch=00.ckpt over it to resume from there" in capsys.readouterr().err


def test_check_checkpoint_tells_complete_from_truncated_or_corrupt(tmp_path: Path):
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.arange(1000.0)}, "epoch": 3}, good)
    check_checkpoint(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.ckpt is broken: it is truncated"):
        check_checkpoint(truncated)
    i = data.index(torch.arange(1000.0).numpy().tobytes()[:64])  # flip bytes inside the tensor data
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(data[:i] + bytes(64) + data[i + 64 :])
    with pytest.raises(CheckpointError, match="corrupt.ckpt is broken: its member .* is corrupt"):
        check_checkpoint(corrupt)


def test_train_refuses_an_unwritable_run_folder_first(utk_dir: Path, tmp_path: Path, overrides, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["train", "scratch_cnn", *overrides(utk_dir, a_file / "run")]) == 2
    assert capsys.readouterr().err == f"error: cannot write {a_file / 'run'}: {a_file} is a file, not a folder\n"


def test_train_names_the_missing_label_column(tmp_path: Path, make_jpeg, overrides, capsys):
    make_jpeg(tmp_path / "a.jpg", 1)
    (tmp_path / "m.csv").write_text("path,gender\na.jpg,1\n")
    assert main(["train", "scratch_cnn", *overrides(tmp_path / "m.csv", tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "no labelled images: the manifest has no 'age' column (columns found: path, gender)" in err
    assert main(["train", "scratch_cnn", f"train.output_dir={tmp_path / 'run'}"]) == 2
    assert capsys.readouterr().err.startswith("error: no training data: give --data PATH")
