"""``agegender data augment-preview``: a PNG grid of the recipe's training augmentations, end to end."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
from PIL import Image

from agegender.cli import main as cli
from agegender.data.preview import DEFAULT_SIZE, display_transform, grid_shape
from agegender.data.transforms import AugmentConfig


def _run(*args: str) -> int:
    return cli.main(["data", "augment-preview", *args])


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_display_transform_is_the_training_pipeline_without_normalisation() -> None:
    t = display_transform(40, AugmentConfig(degrade_p=1.0), seed=0)
    names = [type(s).__name__ for s in t.transforms]
    assert "Normalize" not in names and "ToTensorV2" not in names
    assert names[0] == "Resize" and names[-1] == "Sequential"  # the degradation block is shown too
    out = t(image=np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8))["image"]
    assert out.dtype == np.uint8 and out.shape == (40, 40, 3)


def _leaves(t: A.BaseCompose) -> list[A.BasicTransform]:
    return [x for c in t.transforms for x in (_leaves(c) if isinstance(c, A.BaseCompose) else [c])]


def _first_draws(seed: int) -> list[float]:
    return [leaf.py_random.random() for leaf in _leaves(display_transform(40, AugmentConfig(degrade_p=1.0), seed))]


def test_display_transform_draws_each_step_independently() -> None:
    """A seeded A.Compose gives every transform the same seed, so their first coin flips would all be equal."""
    first = _first_draws(0)
    assert len(first) > 15 and len(set(first)) == len(first)
    assert _first_draws(0) == first  # still reproducible
    assert _first_draws(1) != first


def test_cli_writes_a_grid_of_the_expected_size(tiny_utkface, tmp_path: Path, capsys) -> None:
    out = tmp_path / "grid" / "aug.png"
    code = _run(
        "mobilefacenet_dldl", "--data", str(tiny_utkface.root), "data.augment.degrade_p=1.0",
        "--output", str(out), "--n", "3", "--per-image", "4",
    )  # fmt: skip
    assert code == 0
    height, width = grid_shape(rows=3, per_image=4, size=112)  # the recipe's model.input_size
    assert Image.open(out).size == (width, height)
    assert str(out) in capsys.readouterr().out
    grid = _pixels(out)
    # Cells hold pictures (the noise images), not the white background.
    y, x = height - 2 - 112 // 2, width - 2 - 112 // 2
    assert grid[y - 10 : y + 10, x - 10 : x + 10].std() > 5


def test_input_size_override_and_default(tiny_utkface, tmp_path: Path) -> None:
    out = tmp_path / "small.png"
    assert _run("--data", str(tiny_utkface.root), "model.input_size=48", "--output", str(out), "--n", "2") == 0
    assert Image.open(out).size[::-1] == grid_shape(rows=2, per_image=6, size=48)
    out = tmp_path / "default.png"
    assert _run("--data", str(tiny_utkface.root), "--output", str(out), "--n", "1", "--per-image", "1") == 0
    assert Image.open(out).size[::-1] == grid_shape(rows=1, per_image=1, size=DEFAULT_SIZE)


def test_same_seed_same_grid_other_seed_other_grid(tiny_utkface, tmp_path: Path) -> None:
    common = ["--data", str(tiny_utkface.root), "data.augment.degrade_p=1.0", "model.input_size=32", "--n", "4"]
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path, seed in zip(paths, ("0", "0", "1"), strict=True):
        assert _run(*common, "--seed", seed, "--output", str(path)) == 0
    a, b, c = (_pixels(p) for p in paths)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_augmented_cells_differ_from_the_original(tiny_utkface, tmp_path: Path) -> None:
    out = tmp_path / "g.png"
    size = 32
    _run("--data", str(tiny_utkface.root), "data.augment.degrade_p=1.0", f"model.input_size={size}",
         "--n", "1", "--per-image", "3", "--output", str(out))  # fmt: skip
    grid = _pixels(out).astype(float)
    top = grid_shape(rows=0, per_image=3, size=size)[0] + 2  # header + the first padding row
    cells = [grid[top : top + size, 2 + c * (size + 2) : 2 + c * (size + 2) + size] for c in range(4)]
    # Compare away from the label drawn in the original's bottom-left corner.
    for cell in cells[1:]:
        assert np.abs(cell[: size // 2] - cells[0][: size // 2]).mean() > 1


def test_palette_option_makes_a_palette_png(tiny_utkface, tmp_path: Path) -> None:
    out = tmp_path / "p.png"
    assert _run("--data", str(tiny_utkface.root), "--output", str(out), "--n", "2", "--colors", "64") == 0
    assert Image.open(out).mode == "P"


def test_more_rows_than_images_uses_every_decodable_image(tiny_utkface, tmp_path: Path) -> None:
    """The undecodable file of the fixture is skipped, not fatal."""
    out = tmp_path / "all.png"
    assert _run("--data", str(tiny_utkface.root), "model.input_size=16", "--n", "500", "--output", str(out)) == 0
    rows = (Image.open(out).size[1] - grid_shape(rows=0, per_image=6, size=16)[0] - 2) // (16 + 2)
    assert rows == tiny_utkface.usable_first - 1  # read_dataset keeps it without decoding; the preview cannot


@pytest.mark.parametrize(
    "args, message",
    [
        (["--output", "x.png"], "no data"),
        (["--data", "DATA", "--output", "x.png", "data.augment.degrade_pp=1"], "degrade_p"),
        (["--data", "DATA", "--output", "x.png", "data.augment.downscale_min=2.0"], "scale_range"),
        (["--data", "DATA", "--output", "x.png", "--n", "0"], "at least 1"),
    ],
)
def test_user_errors_are_clean(tiny_utkface, tmp_path: Path, capsys, args: list[str], message: str) -> None:
    args = [a.replace("DATA", str(tiny_utkface.root)).replace("x.png", str(tmp_path / "x.png")) for a in args]
    assert _run(*args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_help_mentions_overrides(capsys) -> None:
    with pytest.raises(SystemExit):
        _run("--help")
    assert "degrade_p" in capsys.readouterr().out


def test_real_chips_make_a_grid(shared_asset, tmp_path: Path) -> None:
    """On real UTKFace chips (skipped without the shared assets): a 2 x 3 grid at 112 px."""
    chips = shared_asset("data/utkface/images")
    sample = tmp_path / "chips"
    sample.mkdir()
    for p in sorted(chips.iterdir())[:5]:
        (sample / p.name).symlink_to(p)
    out = tmp_path / "real.png"
    assert _run("mobilefacenet_dldl", "--data", str(sample), "data.augment.degrade_p=1.0",
                "--output", str(out), "--n", "2", "--per-image", "2")  == 0  # fmt: skip
    assert Image.open(out).size[::-1] == grid_shape(rows=2, per_image=2, size=112)
