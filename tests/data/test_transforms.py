"""Training and eval pipelines: output format, the six augmentations present, effective, and absent in eval."""

from __future__ import annotations

import copy

import albumentations as A
import numpy as np
import pytest
import torch

from agegender.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    build_eval_transform,
    build_train_transform,
)

SIZE = 32
AUGMENTATIONS = ("HorizontalFlip", "Rotate", "ColorJitter", "ToGray", "CoarseDropout", "Affine")


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A colourful, asymmetric image with no black pixels: every augmentation visibly changes it."""
    h, w = 40, 48
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0] = 40 + xx * 4  # red grows to the right: a flip changes it
    img[..., 1] = 40 + yy * 4  # green grows downwards
    img[..., 2] = 120
    img[5:15, 5:20] = (230, 30, 60)  # an off-centre block
    return img


def _by_name(pipeline: A.Compose) -> dict[str, A.BasicTransform]:
    return {type(t).__name__: t for t in pipeline.transforms}


def _with_probabilities(pipeline: A.Compose, on: str | None) -> A.Compose:
    """A copy of the pipeline with augmentation ``on`` at p=1 and the other five at p=0."""
    transforms = [copy.deepcopy(t) for t in pipeline.transforms]
    for t in transforms:
        if type(t).__name__ in AUGMENTATIONS:
            t.p = 1.0 if type(t).__name__ == on else 0.0
    return A.Compose(transforms, seed=0)


def test_train_output_format(image: np.ndarray) -> None:
    x = build_train_transform(SIZE)(image=image)["image"]
    assert isinstance(x, torch.Tensor)
    assert x.dtype == torch.float32
    assert tuple(x.shape) == (3, SIZE, SIZE)


def test_eval_output_normalised() -> None:
    t = build_eval_transform(SIZE)
    mean_pixel = np.empty((50, 60, 3), np.uint8)
    mean_pixel[:] = np.round(np.array(IMAGENET_MEAN) * 255).astype(np.uint8)
    x = t(image=mean_pixel)["image"]
    assert x.dtype == torch.float32 and tuple(x.shape) == (3, SIZE, SIZE)
    assert x.abs().max().item() < 0.01  # the mean colour maps to ~0
    white = t(image=np.full((50, 60, 3), 255, np.uint8))["image"]
    expected = (1 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.allclose(white[:, 0, 0].numpy(), expected, atol=1e-4)


def test_custom_mean_std() -> None:
    x = build_eval_transform(SIZE, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))(image=np.zeros((8, 8, 3), np.uint8))
    assert torch.allclose(x["image"], torch.full((3, SIZE, SIZE), -1.0))


def test_eval_is_deterministic_and_has_no_augmentation(image: np.ndarray) -> None:
    t = build_eval_transform(SIZE)
    assert not set(_by_name(t)) & set(AUGMENTATIONS)
    outs = [t(image=image)["image"] for _ in range(3)]
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_train_pipeline_has_all_six_augmentations() -> None:
    names = [type(t).__name__ for t in build_train_transform(SIZE).transforms]
    for name in AUGMENTATIONS:
        assert names.count(name) == 1, name
    assert names[0] == "Resize"  # resize first: the augmentations run on small arrays
    assert names[-2:] == ["Normalize", "ToTensorV2"]


def test_augmentation_parameters_are_not_trivial() -> None:
    t = _by_name(build_train_transform(SIZE))
    for name in AUGMENTATIONS:
        assert 0 < t[name].p < 1, name
    assert t["Rotate"].limit[0] < 0 < t["Rotate"].limit[1]
    cj = t["ColorJitter"]
    for rng in (cj.brightness, cj.contrast, cj.saturation):
        assert rng[0] < 1 < rng[1]
    assert cj.hue[0] < 0 < cj.hue[1]
    assert t["ToGray"].num_output_channels == 3
    drop = t["CoarseDropout"]
    assert drop.num_holes_range[0] >= 1 and drop.num_holes_range[1] >= drop.num_holes_range[0]
    for rng in (drop.hole_height_range, drop.hole_width_range):
        assert 0 < rng[0] <= rng[1] < 1
    aff = t["Affine"]
    assert aff.scale["x"][0] < 1 < aff.scale["x"][1] and aff.scale["y"][0] < 1 < aff.scale["y"][1]
    assert aff.translate_percent["x"][0] < 0 < aff.translate_percent["x"][1]
    assert aff.translate_percent["y"][0] < 0 < aff.translate_percent["y"][1]
    assert aff.rotate[0] < 0 < aff.rotate[1]


def test_augment_config_is_used() -> None:
    aug = AugmentConfig(hflip=0.25, rotate_limit=30, dropout_holes=(2, 5), scale=0.2, affine_rotate=5)
    t = _by_name(build_train_transform(SIZE, aug=aug))
    assert t["HorizontalFlip"].p == 0.25
    assert tuple(t["Rotate"].limit) == (-30, 30)
    assert tuple(t["CoarseDropout"].num_holes_range) == (2, 5)
    assert np.allclose(t["Affine"].scale["x"], (0.8, 1.2))
    assert tuple(t["Affine"].rotate) == (-5, 5)


def test_all_augmentations_off_equals_eval(image: np.ndarray) -> None:
    """Control for the next test: with the six at p=0 the train pipeline is the eval pipeline."""
    off = _with_probabilities(build_train_transform(SIZE), None)(image=image)["image"]
    assert torch.equal(off, build_eval_transform(SIZE)(image=image)["image"])


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_each_augmentation_changes_the_image(image: np.ndarray, name: str) -> None:
    forced = _with_probabilities(build_train_transform(SIZE), name)
    reference = build_eval_transform(SIZE)(image=image)["image"]
    out = forced(image=image)["image"]
    assert out.shape == reference.shape and out.dtype == torch.float32
    assert (out - reference).abs().mean().item() > 0.01, f"{name} at p=1 left the image unchanged"
