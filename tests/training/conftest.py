"""Fixtures for the training tests: a tiny synthetic UTKFace-style folder and tiny-run overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
N_IMAGES = 40
IMAGE_SIDE = 32


def write_utkface_folder(root: Path, n: int = N_IMAGES, side: int = IMAGE_SIDE) -> Path:
    """``n`` distinct noise JPEGs named ``{age}_{gender}_{race}_{datetime}.jpg.chip.jpg``.

    Ages fall in two age bands (20-29, 50-59) and both genders, i.e. four strata of ``n/4`` images, so the
    stratified 80/10/10 split gives every split images of every stratum (40 images: 32/4/4).
    """
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        gender, old = i % 2, (i // 2) % 2
        age = (50 if old else 20) + (i // 4) % 10
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{age}_{gender}_{i % 5}_2017011{i:010d}.jpg.chip.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def utk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session-wide tiny UTKFace folder (read-only for tests)."""
    return write_utkface_folder(tmp_path_factory.mktemp("utk") / "images")


def tiny_overrides(data: Path, out: Path, epochs: int = 1, loggers: str = "[csv]") -> list[str]:
    """Overrides turning the scratch_cnn recipe into a seconds-long CPU run."""
    return [
        f"data.path={data}",
        f"train.output_dir={out}",
        f"train.epochs={epochs}",
        f"train.loggers={loggers}",
        "model.input_size=32",
        "model.hidden=16",
        "data.batch_size=8",
        "data.eval_batch_size=8",
        "data.num_workers=0",
        "data.augment.rotate_p=0",
        "data.augment.affine_p=0",
        "train.accelerator=cpu",
        "train.progress=false",
        "train.threads=1",
    ]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(NO_ALBUMENTATIONS_UPDATE="1", HF_HUB_OFFLINE="1", TORCH_HOME="/nonexistent", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def agegender_cmd(*args: str) -> list[str]:
    """Command line running the ``agegender`` CLI of this checkout with the test interpreter.

    The console script is used when it exists (Lightning's DDP launcher re-runs ``sys.argv``).
    """
    script = Path(sys.executable).parent / "agegender"
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-m", "agegender.cli.main", *args]


def run_cli(args: list[str], timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        agegender_cmd(*args), cwd=REPO, env=subprocess_env(**env), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def overrides():
    """``overrides(data, out, epochs=1, loggers="[csv]")``: see :func:`tiny_overrides`."""
    return tiny_overrides


@pytest.fixture(scope="session")
def cli():
    """``cli(args, timeout=240, **env)``: run the ``agegender`` CLI in a subprocess (see :func:`run_cli`)."""
    return run_cli


@pytest.fixture(scope="session")
def cli_cmd():
    """``cli_cmd(*args)``: the command line of the ``agegender`` CLI, for Popen."""
    return agegender_cmd


@pytest.fixture(scope="session")
def cli_env():
    """``cli_env(**extra)``: an offline environment for CLI subprocesses."""
    return subprocess_env
