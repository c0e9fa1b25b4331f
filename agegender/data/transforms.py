"""Albumentations pipelines: the reference recipe's six augmentations for training, resize+normalise for eval."""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
from albumentations.pytorch import ToTensorV2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AugmentConfig:
    """Strengths and probabilities of the training augmentations (``strength`` scales the geometric ones)."""

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


def build_train_transform(
    size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD, aug: AugmentConfig | None = None
) -> A.Compose:
    """The reference recipe's augmentations; images are resized first so the rest runs on small arrays."""
    aug = aug or AugmentConfig()
    cj = aug.color_jitter
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
            A.Normalize(mean=mean, std=std),
            ToTensorV2(),
        ]
    )


def build_eval_transform(size: int, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> A.Compose:
    return A.Compose(
        [A.Resize(size, size, interpolation=cv2.INTER_AREA), A.Normalize(mean=mean, std=std), ToTensorV2()]
    )
