"""The runtime preprocessor (numpy + OpenCV) equals the training's albumentations eval transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agegender.data.images import load_image
from agegender.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_eval_transform
from agegender.inference.preprocess import Preprocessor
from agegender.models.folder import DEFAULT_MODEL_DIR, Preprocessing, read_config

PHOTO = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"


def _real_images(shared_asset) -> list[np.ndarray]:
    photo = load_image(PHOTO)
    images = [photo, photo[58:174, 178:268], photo[:37, :201]]  # the photo, a face crop, an odd-sized strip
    utk = shared_asset("data/utkface/images")
    images += [load_image(p) for p in sorted(utk.iterdir())[:12]]
    images += [load_image(shared_asset("data/wild/t1.jpg"))]
    return images


@pytest.mark.parametrize(
    ("size", "mean", "std"),
    [
        (None, None, None),  # the shipped model's own config.json
        (128, IMAGENET_MEAN, IMAGENET_STD),
        (224, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)),
    ],
)
def test_matches_the_albumentations_eval_transform(shared_asset, size, mean, std) -> None:
    if size is None:
        spec = Preprocessing.from_config(read_config(DEFAULT_MODEL_DIR))
        size, mean, std = spec.input_size, spec.mean, spec.std
    ours = Preprocessor(size, mean, std)
    reference = build_eval_transform(size, mean, std)
    for image in _real_images(shared_asset):
        expected = reference(image=image)["image"].numpy()
        got = ours([image])[0]
        assert got.dtype == np.float32 and got.shape == expected.shape == (3, size, size)
        assert np.abs(got - expected).max() <= 1e-5


def test_batches_and_rejects_what_is_not_an_rgb_crop() -> None:
    pre = Preprocessor(112, (0.5,) * 3, (0.5,) * 3)
    crops = [np.zeros((200, 200, 3), np.uint8), np.full((90, 70, 3), 255, np.uint8)]
    batch = pre(crops)
    assert batch.shape == (2, 3, 112, 112) and batch.dtype == np.float32
    assert batch[0].max() == -1.0 and batch[1].min() == 1.0
    assert pre([]).shape == (0, 3, 112, 112)
    with pytest.raises(ValueError, match="RGB uint8"):
        pre([np.zeros((10, 10), np.uint8)])
