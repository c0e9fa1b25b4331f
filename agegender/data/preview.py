"""A PNG grid of training augmentations, so a person can see what the model is trained on.

Each row is one face: the chip resized to the model's input size, then ``per_image`` draws of the recipe's
training pipeline (without Normalize / ToTensor, so the cells are the uint8 images the network would see).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2
from PIL import Image

from agegender.data.images import ImageError, load_image
from agegender.data.readers import read_dataset
from agegender.data.records import DataError, FaceRecord
from agegender.data.transforms import AugmentConfig, build_train_transform, seed_transform
from agegender.errors import ConfigError

log = logging.getLogger(__name__)

#: Input size used when the recipe leaves ``model.input_size`` to the backbone.
DEFAULT_SIZE = 112
#: Pixels between cells and around the grid.
PAD = 2
#: Height of the column-title strip above the cells.
HEADER = 16
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = 255
_INK = (40, 40, 40)


@dataclass
class PreviewResult:
    path: Path
    width: int
    height: int
    rows: int


def grid_shape(rows: int, per_image: int, size: int) -> tuple[int, int]:
    """(height, width) in pixels of a grid of ``rows`` faces, each with the original and ``per_image`` draws."""
    cols = per_image + 1
    return HEADER + rows * size + (rows + 1) * PAD, cols * size + (cols + 1) * PAD


def display_transform(size: int, aug: AugmentConfig, seed: int) -> A.Compose:
    """The training pipeline without Normalize and ToTensor: it yields the uint8 image the network would see."""
    train = build_train_transform(size, aug=aug)
    shown = A.Compose([t for t in train.transforms if not isinstance(t, A.Normalize | ToTensorV2)])
    seed_transform(shown, seed)
    return shown


def _sample_images(records: list[FaceRecord], n: int, seed: int) -> list[tuple[FaceRecord, np.ndarray]]:
    """``n`` records in a seeded random order with their pixels; files that do not decode are skipped."""
    order = list(records)
    random.Random(seed).shuffle(order)
    out = []
    for rec in order:
        if len(out) == n:
            break
        try:
            out.append((rec, load_image(rec.path)))
        except (ImageError, OSError) as e:
            log.warning("skipping %s: %s", rec.path, e)
    return out


def _label(rec: FaceRecord) -> str:
    if rec.age is None:
        return ""
    gender = {0: "M", 1: "F"}.get(rec.gender, "?") if rec.gender is not None else "?"
    return f"{rec.age:g} {gender}"


def _put_text(img: np.ndarray, text: str, x: int, y: int, scale: float = 0.35, box: bool = False) -> None:
    """Small text at baseline (x, y); ``box`` puts a white patch behind it so it reads on any picture."""
    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    if box:
        cv2.rectangle(img, (x - 1, y - h - 2), (x + w + 1, y + base), (255, 255, 255), cv2.FILLED)
    cv2.putText(img, text, (x, y), _FONT, scale, _INK, 1, cv2.LINE_AA)


def render_grid(
    samples: list[tuple[FaceRecord, np.ndarray]], transform: A.Compose, size: int, per_image: int
) -> np.ndarray:
    """The grid as an RGB uint8 array: column titles on top, one face per row, the label on the original."""
    height, width = grid_shape(len(samples), per_image, size)
    grid = np.full((height, width, 3), _BACKGROUND, np.uint8)
    for col in range(per_image + 1):
        title = "original" if col == 0 else f"augmented {col}"
        _put_text(grid, title, PAD + col * (size + PAD) + 2, HEADER - 4)
    for row, (rec, image) in enumerate(samples):
        y = HEADER + PAD + row * (size + PAD)
        cells = [cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)]
        cells += [transform(image=image)["image"] for _ in range(per_image)]
        for col, cell in enumerate(cells):
            x = PAD + col * (size + PAD)
            grid[y : y + size, x : x + size] = cell
        if label := _label(rec):
            _put_text(grid, label, PAD + 3, y + size - 4, box=True)
    return grid


def augment_preview(
    data: str | Path,
    output: str | Path,
    aug: AugmentConfig,
    size: int = DEFAULT_SIZE,
    *,
    fmt: str = "auto",
    n: int = 8,
    per_image: int = 6,
    seed: int = 0,
    colors: int = 0,
) -> PreviewResult:
    """Write a PNG grid of ``n`` seeded-random faces from ``data``, each as original + ``per_image`` draws.

    ``colors`` > 0 reduces the PNG to that many palette colours: a third of the size, for grids kept in docs.
    """
    if n < 1 or per_image < 1:
        raise ConfigError(f"--n and --per-image must be at least 1 (got {n} and {per_image})")
    if colors and not 2 <= colors <= 256:
        raise ConfigError(f"--colors must be between 2 and 256, or 0 for full colour (got {colors})")
    # Hashing every file is enough here; the few sampled images are decoded (and skipped if broken) below.
    reading = read_dataset(data, fmt, check_images=False)
    samples = _sample_images(reading.records, n, seed)
    if not samples:
        raise DataError(f"{data}: none of the images could be decoded")
    grid = render_grid(samples, display_transform(size, aug, seed), size, per_image)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(grid)
    if colors:
        picture = picture.quantize(colors, method=Image.Quantize.MEDIANCUT)
    picture.save(output, format="PNG", optimize=True)
    log.info("wrote %s (%d x %d px, %d faces)", output, grid.shape[1], grid.shape[0], len(samples))
    return PreviewResult(output, grid.shape[1], grid.shape[0], len(samples))
