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
    text = text.replace("\r", "\n")  # a progress bar redraws its line with carriage returns
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
    before = torch.load(ckpt, map_location="cpu", weights_only=False)["callbacks"]["TrainClock"]["seconds"]
    assert before > 0

    r = cli([*args, "--resume"])
    text = r.stdout + r.stderr
    assert r.returncode == 0, text[-3000:]
    assert f"Restored all states from the checkpoint at {ckpt}" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == total_steps and summary["epochs_completed"] == epochs
    assert summary["train_seconds"] > before  # the killed run's time counts too
    printed = _epochs_printed(r.stdout)
    # continued from the killed epoch (or the next one, if it was killed between its last step and its end)
    assert printed and printed[0] in (epoch + 1, epoch + 2) and printed[-1] == epochs, r.stdout[-3000:]
    assert 1 not in printed
    assert _global_step(ckpt) == (total_steps, epochs - 1)
    assert (out / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(utk_dir: Path, tmp_path: Path, overrides, cli):
    """The README's command with its default settings: progress bars and loggers on. Rank 0's progress bar used to
    sync the epoch's figures while rank 1 synced others, and both waited for ever after the first validation."""
    out = tmp_path / "ddp"
    tiny = [
        o
        for o in overrides(utk_dir, out, epochs=2)
        if not o.startswith(("data.path=", "train.output_dir=", "train.progress=", "train.loggers="))
    ]
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
        TRACKIO_DIR=str(tmp_path / "trackio"),
    )
    text = r.stdout + r.stderr
    assert r.returncode == 0, text[-4000:]
    assert "GLOBAL_RANK: 1" in text and "distributed_backend=gloo" in text
    assert "\x1b[" not in text  # not a terminal: no cursor moves, no colours
    summary = json.loads((out / "summary.json").read_text())
    assert summary["global_step"] == 4  # 32 images over 2 processes, batches of 8, two epochs
    assert summary["recipe"] == "scratch_cnn" and summary["model_folder"] == str(out / "model")
    assert (out / "model" / "model.safetensors").is_file() and (out / "model" / "config.json").is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert _epochs_printed(r.stdout) == [1, 2]  # printed by rank 0 only


def _default_sigint() -> None:
    """A shell that started the tests in the background may ignore SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop_during_training(signum: int, args: list[str], ckpt: Path, log_path: Path, cli_cmd, cli_env):
    """Run ``agegender *args``, send ``signum`` once it has taken two steps; (exit code, output)."""
    log = log_path.open("w")
    proc = subprocess.Popen(
        cli_cmd(*args), stdout=log, stderr=subprocess.STDOUT, env=cli_env(), preexec_fn=_default_sigint
    )
    try:
        deadline = time.monotonic() + 600
        saved = None
        while time.monotonic() < deadline and proc.poll() is None:
            saved = _global_step(ckpt) if ckpt.is_file() else None
            if saved and saved[0] >= 2:  # training is under way
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the signal:\n" + log_path.read_text()[-3000:]
        assert saved, "no training step within 10 minutes:\n" + log_path.read_text()[-3000:]
        proc.send_signal(signum)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    return proc.returncode, log_path.read_text()


def _stopped_message(name: str, text: str, ckpt: Path) -> tuple[int, int]:
    """(epoch, step) from the one-line message that ends a run stopped by ``name``."""
    stopped = rf"^error: training stopped by {name} at epoch (\d+), step (\d+); checkpoint saved to (.+)\. "
    m = re.search(stopped, text, re.M)
    assert m, text[-3000:]
    assert m[3] == str(ckpt) and "run the same command with --resume" in text and "Traceback" not in text
    return int(m[1]), int(m[2])


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_says_so(utk_dir: Path, tmp_path: Path, overrides, cli_cmd, cli_env):
    out = tmp_path / "run"
    args = ["train", "scratch_cnn", *overrides(utk_dir, out, epochs=3), "train.checkpoint_every_n_steps=1"]
    ckpt = out / "checkpoints" / "last.ckpt"
    code, text = _stop_during_training(signal.SIGINT, args, ckpt, tmp_path / "run.log", cli_cmd, cli_env)
    assert code == 130, text[-3000:]
    _, step = _stopped_message("Ctrl-C", text, ckpt)
    assert _global_step(ckpt)[0] == step and not (out / "summary.json").exists()


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_continues_from_it(
    utk_dir: Path, tmp_path: Path, overrides, cli_cmd, cli_env, cli
):
    out = tmp_path / "run"
    args = ["train", "scratch_cnn", *overrides(utk_dir, out, epochs=3), "train.checkpoint_every_n_steps=1"]
    ckpt = out / "checkpoints" / "last.ckpt"
    code, text = _stop_during_training(signal.SIGTERM, args, ckpt, tmp_path / "first.log", cli_cmd, cli_env)
    assert code == 143, text[-3000:]  # 128 + SIGTERM: a scheduler sees the job was stopped
    epoch, step = _stopped_message("SIGTERM", text, ckpt)
    assert _global_step(ckpt)[0] == step and 2 <= step < 12
    assert not (out / "summary.json").exists()

    r = cli([*args, "--resume"], timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert f"Restored all states from the checkpoint at {ckpt}" in r.stdout + r.stderr
    assert json.loads((out / "summary.json").read_text())["global_step"] == 12  # 3 epochs of 4 steps in all
    printed = _epochs_printed(r.stdout)
    assert printed and printed[0] in (epoch, epoch + 1) and printed[-1] == 3, r.stdout[-3000:]
