"""Albumentations pipelines: the reference recipe's six augmentations for training, resize+normalise for eval,
and an optional block of real-world degradations (small, blurry, noisy, JPEG-compressed, badly lit photos)."""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
from albumentations.pytorch import ToTensorV2

from agegender.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AugmentConfig:
    """Strengths and probabilities of the training augmentations (``strength`` scales the geometric ones).

    The fields from ``degrade_p`` on imitate what happens to faces in people's photos before they reach the model
    (detector error, light, a small face, blur, noise, JPEG); ``degrade_p`` = 0 leaves the pipeline as before.
    All sizes are in the model input's pixel space: the block runs after the resize to ``input_size``.
    """

    hflip: float = 0.5
    rotate_limit: float = 15.0
    rotate_p: float = 0.5
    color_jitter: float = 0.2
    hue: float = 0.05
    color_p: float = 0.5
    grayscale_p: float = 0.1
    dropout_p: float = 0.3
    dropout_holes: tuple[int, int] = (1, 3)
    dropout_size: tuple[float, float] = (0.08, 0.2)
    shift: float = 0.06
    scale: float = 0.1
    affine_rotate: float = 10.0
    affine_p: float = 0.5

    # Real-world degradation: probability that a training image goes through the block at all (0 = off).
    degrade_p: float = 0.0
    # Detector / landmark error: shift (fraction of the side), relative scale and angle (degrees) of the face box.
    jitter_shift: float = 0.04
    jitter_scale: float = 0.08
    jitter_rotate: float = 8.0
    jitter_p: float = 0.7
    # Light: brightness/contrast (fractions) or gamma (1 = unchanged), one of the two.
    light_brightness: float = 0.2
    light_contrast: float = 0.25
    light_gamma: tuple[float, float] = (0.7, 1.5)
    light_p: float = 0.5
    # Colour: white balance (colour temperature in kelvin, must include 6000) or a hue/saturation shift.
    colour_temperature: tuple[int, int] = (3500, 10000)
    colour_hue: float = 8.0
    colour_saturation: float = 40.0
    colour_p: float = 0.3
    # Side light: a soft linear brightening/darkening across the face (albumentations caps the intensity at 0.2).
    side_light_intensity: tuple[float, float] = (0.05, 0.2)
    side_light_p: float = 0.3
    # Resolution loss: shrink by a factor in [min, max] and enlarge back (area down, bilinear up, as align does).
    # The chip's face box is ~94% of the side, so the face spans ~0.94 * input_size * scale pixels before the
    # enlargement: at 112 px, 0.22 gives a ~23 px face (at 128 px, ~26 px); 0.7 gives ~74 px.
    downscale_min: float = 0.22
    downscale_max: float = 0.7
    downscale_p: float = 0.5
    # Blur: Gaussian (sigma in pixels) or motion (kernel size in pixels, odd), one of the two.
    blur_sigma: tuple[float, float] = (0.5, 1.8)
    motion_blur: tuple[int, int] = (3, 7)
    blur_p: float = 0.4
    # Sensor noise: Gaussian (std as a fraction of 255) or shot noise (Poisson, brighter pixels noisier; the scale
    # is 1 / photons per unit intensity: 0.002-0.02 gives a std of ~5-18 levels at mid-grey), one of the two.
    noise_std: tuple[float, float] = (0.02, 0.06)
    shot_noise: tuple[float, float] = (0.002, 0.02)
    noise_p: float = 0.4
    degrade_gray_p: float = 0.1
    jpeg_quality: tuple[int, int] = (20, 90)
    jpeg_p: float = 0.6


def build_degradation(aug: AugmentConfig) -> A.Sequential:
    """The real-world block, in the order a camera and the web apply them: framing (detector), light and colour
    of the scene, resolution loss, blur, sensor noise, grayscale conversion, and JPEG compression last."""
    gamma = (aug.light_gamma[0] * 100, aug.light_gamma[1] * 100)  # albumentations counts gamma in percent
    return A.Sequential(
        [
            A.Affine(
                scale=(1 - aug.jitter_scale, 1 + aug.jitter_scale),
                translate_percent=(-aug.jitter_shift, aug.jitter_shift),
                rotate=(-aug.jitter_rotate, aug.jitter_rotate),
                border_mode=cv2.BORDER_REFLECT_101,
                p=aug.jitter_p,
            ),
            A.OneOf(
                [
                    A.RandomBrightnessContrast(
                        brightness_limit=aug.light_brightness, contrast_limit=aug.light_contrast, p=1.0
                    ),
                    A.RandomGamma(gamma_limit=gamma, p=1.0),
                ],
                p=aug.light_p,
            ),
            A.OneOf(
                [
                    A.PlanckianJitter(mode="blackbody", temperature_limit=aug.colour_temperature, p=1.0),
                    A.HueSaturationValue(
                        hue_shift_limit=aug.colour_hue, sat_shift_limit=aug.colour_saturation, val_shift_limit=0, p=1.0
                    ),
                ],
                p=aug.colour_p,
            ),
            A.Illumination(  # soft, unlike RandomShadow's hard-edged polygons, which no face photo shows
                mode="linear", intensity_range=aug.side_light_intensity, effect_type="both", p=aug.side_light_p
            ),
            A.Downscale(
                scale_range=(aug.downscale_min, aug.downscale_max),
                interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR},
                p=aug.downscale_p,
            ),
            A.OneOf(
                [
                    A.GaussianBlur(blur_limit=0, sigma_limit=aug.blur_sigma, p=1.0),  # kernel from sigma
                    A.MotionBlur(blur_limit=aug.motion_blur, allow_shifted=False, p=1.0),
                ],
                p=aug.blur_p,
            ),
            A.OneOf(
                [
                    A.GaussNoise(std_range=aug.noise_std, per_channel=True, p=1.0),
                    # Not ISONoise: its only-brightening noise, scaled by the whole image's contrast, makes white
                    # specks on faces and nothing on flat areas.
                    A.ShotNoise(scale_range=aug.shot_noise, p=1.0),
                ],
                p=aug.noise_p,
            ),
            A.ToGray(num_output_channels=3, p=aug.degrade_gray_p),
            A.ImageCompression(compression_type="jpeg", quality_range=aug.jpeg_quality, p=aug.jpeg_p),
        ],
        p=aug.degrade_p,
    )


def build_train_transform(
    size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, aug: AugmentConfig | None = None
) -> A.Compose:
    """The reference recipe's augmentations; images are resized first so the rest runs on small arrays.

    With ``aug.degrade_p`` > 0 the real-world block (:func:`build_degradation`) follows them, before Normalize.
    """
    aug = aug or AugmentConfig()
    cj = aug.color_jitter
    try:  # built even when off: a bad knob fails now, not once switched on
        degradation = build_degradation(aug)
    except ValueError as e:  # albumentations' argument validation (pydantic) names the bad value
        raise ConfigError(f"invalid data.augment setting: {e}") from None
    return A.Compose(
        [
            A.Resize(size, size, interpolation=cv2.INTER_AREA),
            A.HorizontalFlip(p=aug.hflip),
            A.Rotate(limit=aug.rotate_limit, border_mode=cv2.BORDER_REFLECT_101, p=aug.rotate_p),
            A.ColorJitter(brightness=cj, contrast=cj, saturation=cj, hue=aug.hue, p=aug.color_p),
            A.ToGray(num_output_channels=3, p=aug.grayscale_p),
            A.CoarseDropout(
                num_holes_range=aug.dropout_holes,
                hole_height_range=aug.dropout_size,
                hole_width_range=aug.dropout_size,
                fill=0,
                p=aug.dropout_p,
            ),
            A.Affine(  # shift-scale-rotate; Affine() with its defaults would do nothing
                scale=(1 - aug.scale, 1 + aug.scale),
                translate_percent=(-aug.shift, aug.shift),
                rotate=(-aug.affine_rotate, aug.affine_rotate),
                border_mode=cv2.BORDER_REFLECT_101,
                p=aug.affine_p,
            ),
            *([degradation] if aug.degrade_p > 0 else []),
            A.Normalize(mean=mean, std=std),
            ToTensorV2(),
        ]
    )


def build_eval_transform(size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> A.Compose:
    return A.Compose(
        [A.Resize(size, size, interpolation=cv2.INTER_AREA), A.Normalize(mean=mean, std=std), ToTensorV2()]
    )


def seed_transform(t: A.BaseCompose | A.BasicTransform, seed: int | np.random.SeedSequence) -> None:
    """Give every transform its own seed, derived from ``seed``.

    albumentations 2 transforms keep their own random generators: ``A.Compose(seed=...)`` hands all of them the
    same seed (their coin flips then move in lockstep), and DataLoader workers forked from one process copy the
    same generator state (every worker draws the same augmentations). Training reseeds each worker with this.
    """
    seeds = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    t.set_random_seed(int(seeds.generate_state(1)[0]))  # on a composition this also reseeds its children...
    if isinstance(t, A.BaseCompose):
        for child, child_seeds in zip(t.transforms, seeds.spawn(len(t.transforms)), strict=True):
            seed_transform(child, child_seeds)  # ...which then get their own
