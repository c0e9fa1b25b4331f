"""`agegender train` in subprocesses: surviving kill -9 with --resume, and 2-process DDP on CPU."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch


def _global_step(ckpt: Path) -> tuple[int, int] | None:
    """(global_step, epoch) of a checkpoint, or None while it is missing or being written."""
    try:
        c = torch.load(ckpt, map_location="cpu", weights_only=False)
        return int(c["global_step"]), int(c["epoch"])
    except Exception:
        return None


def _epochs_printed(text: str) -> list[int]:
    return [int(m) for m in re.findall(r"^Epoch (\d+)/\d+ \| train acc", text, flags=re.M)]


@pytest.mark.slow
def test_kill_9_then_resume_continues_from_the_saved_step(
    utk_dir: Path, tmp_path: Path, overrides, cli_cmd, cli_env, cli
):
    out = tmp_path / "run"
    epochs = 4
    args = ["train", "scratch_cnn", *overrides(utk_dir, out, epochs=epochs), "train.checkpoint_every_n_steps=1"]
    total_steps = epochs * 4  # 32 training images in batches of 8
    ckpt = out / "checkpoints" / "last.ckpt"
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cli_cmd(*args), stdout=log, stderr=subprocess.STDOUT, env=cli_env())
    try:
        deadline = time.monotonic() + 240
        seen = None
        while time.monotonic() < deadline and proc.poll() is None:
            stamp = ckpt.stat().st_mtime_ns if ckpt.is_file() else None
            if stamp is not None and stamp != seen:
                seen, saved = stamp, _global_step(ckpt)
                if saved and saved[0] >= 5:  # into the second epoch
                    break
            time.sleep(0.02)
        assert proc.poll() is None, (
            "the run ended before it could be killed:\n" + (tmp_path / "first.log").read_text()[-3000:]
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "summary.json").exists()
    step, epoch = _global_step(ckpt)
    assert 5 <= step < total_steps and epoch >= 1

    r = cli([*args, "--resume"])
    text = r.stdout + r.stderr
    assert r.returncode == 0, text[-3000:]
    assert f"Restored all states from the checkpoint at {ckpt}" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == total_steps and summary["epochs_completed"] == epochs
    printed = _epochs_printed(r.stdout)
    # continued from the killed epoch (or the next one, if it was killed between its last step and its end)
    assert printed and printed[0] in (epoch + 1, epoch + 2) and printed[-1] == epochs, r.stdout[-3000:]
    assert 1 not in printed
    assert _global_step(ckpt) == (total_steps, epochs - 1)
    assert (out / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(utk_dir: Path, tmp_path: Path, overrides, cli):
    out = tmp_path / "ddp"
    tiny = [o for o in overrides(utk_dir, out) if not o.startswith(("data.path=", "train.output_dir="))]
    r = cli(
        [
            "train",
            "scratch_cnn",
            "--data",
            str(utk_dir),
            "--output",
            str(out),
            "--devices",
            "2",
            "--strategy",
            "ddp",
            *tiny,
        ],
        timeout=300,
    )
    text = r.stdout + r.stderr
    assert r.returncode == 0, text[-4000:]
    assert "GLOBAL_RANK: 1" in text and "distributed_backend=gloo" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == 2  # 32 images over 2 processes, batches of 8
    assert summary["recipe"] == "scratch_cnn" and summary["model_folder"] == str(out / "model")
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "config.json").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert len(_epochs_printed(r.stdout)) == 1  # printed by rank 0 only
