"""The training-curves picture: written after every epoch, training and validation lines per metric."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from PIL import Image

from agegender.training.config import load_recipe
from agegender.training.curves import CurvesPlot
from agegender.training.train import fit


def test_curves_png_after_each_epoch(utk_dir: Path, tmp_path: Path, overrides) -> None:
    out = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        fit(load_recipe("scratch_cnn", overrides(utk_dir, out, epochs=2)))
    picture = Image.open(out / "curves.png")
    assert picture.width > 3 * picture.height  # three charts side by side


def test_history_keeps_both_sides_per_epoch_and_survives_resume(tmp_path: Path) -> None:
    cb = CurvesPlot(tmp_path / "c.png")
    cb.history = {"train/mae": {1: 9.0, 2: 8.0}, "val/mae": {1: 10.0, 2: 9.5}, "val/acc": {1: 0.6}}
    cb.draw()
    assert (tmp_path / "c.png").is_file()
    again = CurvesPlot(tmp_path / "d.png")
    again.load_state_dict(cb.state_dict())
    assert again.history == cb.history
