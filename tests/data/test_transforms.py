"""Training and eval pipelines: output format, the six augmentations present, effective, and absent in eval;
the real-world degradation block: off by default, effective parameters as configured, and each step effective."""

from __future__ import annotations

import copy
import dataclasses
import warnings

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from agegender.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AugmentConfig,
    build_degradation,
    build_eval_transform,
    build_train_transform,
)
from agegender.training.config import list_recipes, load_recipe

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


# --- Real-world degradation block (data.augment.degrade_p) ---------------------------------------------------

#: The pipeline as it was before the degradation block existed; degrade_p=0 must give exactly this.
REFERENCE_NAMES = ["Resize", *AUGMENTATIONS, "Normalize", "ToTensorV2"]
DEGRADE_STEP_PS = (
    "jitter_p",
    "light_p",
    "colour_p",
    "side_light_p",
    "downscale_p",
    "blur_p",
    "noise_p",
    "degrade_gray_p",
    "jpeg_p",
)
DEGRADE_KNOBS = [f.name for f in dataclasses.fields(AugmentConfig)][
    [f.name for f in dataclasses.fields(AugmentConfig)].index("degrade_p") :
]


@pytest.fixture(scope="module")
def textured() -> np.ndarray:
    """112 px (a model input) of gradients plus strong seeded noise: plenty of high frequencies to lose."""
    h = w = 112
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.empty((h, w, 3), np.float64)
    img[..., 0] = 60 + xx
    img[..., 1] = 60 + yy
    img[..., 2] = 120
    img += np.random.default_rng(0).normal(0, 30, (h, w, 3))
    return img.clip(0, 255).astype(np.uint8)


def _leaves(t: A.BaseCompose) -> dict[str, A.BasicTransform]:
    """The transforms inside a (nested) composition, by class name."""
    out: dict[str, A.BasicTransform] = {}
    for c in t.transforms:
        out.update(_leaves(c) if isinstance(c, A.BaseCompose) else {type(c).__name__: c})
    return out


def _forced(leaf: A.BasicTransform, seed: int = 0) -> A.Compose:
    """One transform of our pipeline (so with our parameters) on its own, always applied."""
    t = copy.deepcopy(leaf)
    t.p = 1.0
    return A.Compose([t], seed=seed)


def _only(*on: str, **knobs) -> A.Compose:
    """The degradation block, always applied, with only the steps ``on`` (probability fields) switched on."""
    probs = {k: (1.0 if k in on else 0.0) for k in DEGRADE_STEP_PS}
    return A.Compose([build_degradation(AugmentConfig(degrade_p=1.0, **probs, **knobs))], seed=0)


def _laplacian_var(img: np.ndarray) -> float:
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def _high_frequency_share(img: np.ndarray) -> float:
    """Share of the spectrum's energy above 0.75 of the Nyquist frequency."""
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(gray.shape[0]), np.fft.fftfreq(gray.shape[1]), indexing="ij")
    return float(power[np.hypot(fx, fy) > 0.75 * 0.5].sum() / power.sum())


def test_degradation_is_off_by_default_and_on_only_in_wild_recipes() -> None:
    assert AugmentConfig().degrade_p == 0.0
    for name in list_recipes():
        expected = 0.5 if name.endswith("_wild") else 0.0
        assert load_recipe(name).data.augment.degrade_p == expected, name


def test_degrade_p_zero_gives_exactly_the_previous_pipeline() -> None:
    default = build_train_transform(SIZE)
    assert [type(t).__name__ for t in default.transforms] == REFERENCE_NAMES
    # Degradation knobs without the master switch change nothing at all.
    tuned = AugmentConfig(downscale_min=0.1, jpeg_quality=(5, 10), blur_p=1.0, jitter_rotate=30.0)
    assert A.to_dict(build_train_transform(SIZE, aug=tuned)) == A.to_dict(default)


def test_degradation_block_sits_between_the_augmentations_and_normalize(textured: np.ndarray) -> None:
    pipeline = build_train_transform(SIZE, aug=AugmentConfig(degrade_p=0.4))
    names = [type(t).__name__ for t in pipeline.transforms]
    assert names == [*REFERENCE_NAMES[:-2], "Sequential", "Normalize", "ToTensorV2"]
    assert pipeline.transforms[-3].p == 0.4
    x = pipeline(image=textured)["image"]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and tuple(x.shape) == (3, SIZE, SIZE)


def test_degradation_order_is_camera_then_web() -> None:
    """Framing, scene light, resolution loss, blur, sensor noise, grayscale, and JPEG last."""
    steps = build_degradation(AugmentConfig(degrade_p=1.0)).transforms
    kinds = [sorted(_leaves(s)) if isinstance(s, A.BaseCompose) else type(s).__name__ for s in steps]
    assert kinds == [
        "Affine",
        ["RandomBrightnessContrast", "RandomGamma"],
        ["HueSaturationValue", "PlanckianJitter"],
        "Illumination",
        "Downscale",
        ["GaussianBlur", "MotionBlur"],
        ["GaussNoise", "ShotNoise"],
        "ToGray",
        "ImageCompression",
    ]


def test_no_argument_is_silently_dropped() -> None:
    """albumentations 2.x only warns about (and then ignores) an unknown argument such as quality_lower."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_train_transform(SIZE, aug=AugmentConfig(degrade_p=1.0))
    assert not [str(w.message) for w in caught]


def test_effective_parameters_are_what_the_config_asked() -> None:
    """Read back every transform's own attributes: a renamed albumentations argument would leave a default here."""
    aug = AugmentConfig(
        degrade_p=0.9,
        jitter_shift=0.03,
        jitter_scale=0.05,
        jitter_rotate=6.0,
        jitter_p=0.81,
        light_brightness=0.25,
        light_contrast=0.15,
        light_gamma=(0.8, 1.3),
        light_p=0.41,
        colour_temperature=(4000, 9000),
        colour_hue=5.0,
        colour_saturation=25.0,
        colour_p=0.31,
        side_light_intensity=(0.1, 0.15),
        side_light_p=0.21,
        downscale_min=0.3,
        downscale_max=0.6,
        downscale_p=0.51,
        blur_sigma=(0.7, 1.2),
        motion_blur=(3, 5),
        blur_p=0.42,
        noise_std=(0.03, 0.05),
        shot_noise=(0.004, 0.01),
        noise_p=0.43,
        degrade_gray_p=0.11,
        jpeg_quality=(30, 70),
        jpeg_p=0.61,
    )
    block = build_degradation(aug)
    assert block.p == 0.9
    steps = block.transforms
    assert [s.p for s in steps] == [0.81, 0.41, 0.31, 0.21, 0.51, 0.42, 0.43, 0.11, 0.61]
    t = _leaves(block)
    aff = t["Affine"]
    assert aff.scale == {"x": (0.95, 1.05), "y": (0.95, 1.05)}
    assert aff.translate_percent == {"x": (-0.03, 0.03), "y": (-0.03, 0.03)}
    assert tuple(aff.rotate) == (-6.0, 6.0)
    assert aff.border_mode == cv2.BORDER_REFLECT_101
    assert tuple(t["RandomBrightnessContrast"].brightness_limit) == (-0.25, 0.25)
    assert tuple(t["RandomBrightnessContrast"].contrast_limit) == (-0.15, 0.15)
    assert np.allclose(t["RandomGamma"].gamma_limit, (80, 130))  # albumentations counts gamma in percent
    assert tuple(t["PlanckianJitter"].temperature_limit) == (4000, 9000)
    hsv = t["HueSaturationValue"]
    assert (tuple(hsv.hue_shift_limit), tuple(hsv.sat_shift_limit)) == ((-5, 5), (-25, 25))
    assert tuple(hsv.val_shift_limit) == (0, 0)
    ill = t["Illumination"]
    assert (ill.mode, tuple(ill.intensity_range)) == ("linear", (0.1, 0.15))
    down = t["Downscale"]
    assert tuple(down.scale_range) == (0.3, 0.6)
    assert down.interpolation_pair == {"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}
    assert tuple(t["GaussianBlur"].sigma_limit) == (0.7, 1.2)
    assert tuple(t["MotionBlur"].blur_limit) == (3, 5)
    assert tuple(t["GaussNoise"].std_range) == (0.03, 0.05) and t["GaussNoise"].per_channel
    assert tuple(t["ShotNoise"].scale_range) == (0.004, 0.01)
    assert t["ToGray"].num_output_channels == 3
    jpeg = t["ImageCompression"]
    assert (jpeg.compression_type, tuple(jpeg.quality_range)) == ("jpeg", (30, 70))
    for name in ("RandomBrightnessContrast", "RandomGamma", "PlanckianJitter", "HueSaturationValue"):
        assert t[name].p == 1.0, name  # inside OneOf: the OneOf's p decides
    for name in ("GaussianBlur", "MotionBlur", "GaussNoise", "ShotNoise"):
        assert t[name].p == 1.0, name


def _nudged(value):
    """A different valid value of the same type (probabilities stay in [0, 1], ranges stay ordered)."""
    if isinstance(value, tuple):
        lo, hi = value
        return (lo, hi - 2) if isinstance(lo, int) else (lo, (lo + hi) / 2)
    return value * 0.9 if value else 0.05


@pytest.mark.parametrize("knob", DEGRADE_KNOBS)
def test_every_degradation_knob_reaches_the_pipeline(knob: str) -> None:
    base = AugmentConfig(degrade_p=0.5)
    changed = dataclasses.replace(base, **{knob: _nudged(getattr(base, knob))})
    assert A.to_dict(build_degradation(changed)) != A.to_dict(build_degradation(base)), knob


def test_recipe_overrides_reach_the_config() -> None:
    recipe = load_recipe(
        "mobilefacenet_dldl",
        ["data.augment.degrade_p=0.5", "data.augment.jpeg_quality=[30,70]", "data.augment.blur_sigma=[1,2]"],
    )
    aug = recipe.data.augment
    assert aug.degrade_p == 0.5
    assert aug.jpeg_quality == (30, 70) and all(type(q) is int for q in aug.jpeg_quality)
    assert aug.blur_sigma == (1.0, 2.0) and all(type(s) is float for s in aug.blur_sigma)
    assert _leaves(build_degradation(aug))["ImageCompression"].quality_range == (30, 70)


@pytest.mark.parametrize("step", DEGRADE_STEP_PS)
def test_each_degradation_step_changes_the_image(textured: np.ndarray, step: str) -> None:
    out = _only(step)(image=textured)["image"]
    assert out.shape == textured.shape and out.dtype == np.uint8
    assert np.abs(out.astype(float) - textured).mean() > 1.0, f"{step} at p=1 left the image unchanged"


def test_all_steps_off_leaves_the_image_unchanged(textured: np.ndarray) -> None:
    """Control for the test above."""
    assert np.array_equal(_only()(image=textured)["image"], textured)


@pytest.mark.parametrize("name", ["GaussianBlur", "MotionBlur"])
def test_blur_lowers_the_laplacian_variance(textured: np.ndarray, name: str) -> None:
    leaf = _leaves(build_degradation(AugmentConfig(degrade_p=1.0)))[name]
    for seed in range(5):
        out = _forced(leaf, seed)(image=textured)["image"]
        assert _laplacian_var(out) < 0.7 * _laplacian_var(textured), (name, seed)


def test_downscale_removes_high_frequencies(textured: np.ndarray) -> None:
    leaf = _leaves(build_degradation(AugmentConfig(degrade_p=1.0)))["Downscale"]
    before = _high_frequency_share(textured)
    for seed in range(5):
        out = _forced(leaf, seed)(image=textured)["image"]
        assert out.shape == textured.shape
        assert _high_frequency_share(out) < 0.3 * before, seed


def test_jpeg_at_quality_20_changes_pixels(textured: np.ndarray) -> None:
    out = _only("jpeg_p", jpeg_quality=(20, 20))(image=textured)["image"]
    assert np.abs(out.astype(float) - textured).mean() > 5


def test_grayscale_gives_equal_channels(textured: np.ndarray) -> None:
    out = _only("degrade_gray_p")(image=textured)["image"]
    assert out.shape == textured.shape
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


@pytest.mark.parametrize("name", ["GaussNoise", "ShotNoise"])
def test_noise_raises_variance_on_a_flat_image(name: str) -> None:
    flat = np.full((64, 64, 3), 128, np.uint8)
    leaf = _leaves(build_degradation(AugmentConfig(degrade_p=1.0)))[name]
    for seed in range(3):
        out = _forced(leaf, seed)(image=flat)["image"]
        assert out.astype(float).std() > 2.0, (name, seed)
        assert abs(out.astype(float).mean() - 128) < 5  # noise, not a brightness change
