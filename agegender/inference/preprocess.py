"""Face crop -> network input with numpy and OpenCV only, identical to the training's evaluation transform.

Training validates with albumentations (``agegender.data.transforms.build_eval_transform``: ``A.Resize`` with
``INTER_AREA``, ``A.Normalize(mean, std, max_pixel_value=255)``, HWC -> CHW). Prediction must see the same
numbers without importing albumentations (and through it torch): this module repeats those three steps, and
``tests/inference/test_preprocess.py`` checks both agree within 1e-5 on real photos.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from agegender.models.folder import Preprocessing

__all__ = ["Preprocessor"]


class Preprocessor:
    """Resize (area interpolation), normalise per channel and stack crops into an NCHW float32 batch."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.size = int(size)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        # One lookup table per channel: (pixel - 255 mean) / (255 std), as albumentations computes it for uint8.
        levels = np.arange(256, dtype=np.float32)[None, :]
        mean_px = np.asarray(self.mean, dtype=np.float32)[:, None] * 255.0
        std_px = np.asarray(self.std, dtype=np.float32)[:, None] * 255.0
        self._lut = ((levels - mean_px) / std_px).astype(np.float32)

    @classmethod
    def from_spec(cls, spec: Preprocessing) -> Preprocessor:
        return cls(spec.input_size, spec.mean, spec.std)

    def one(self, crop: np.ndarray) -> np.ndarray:
        """One RGB uint8 HxWx3 crop -> 3 x size x size float32."""
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 HxWx3 crop, got {crop.dtype} {crop.shape}")
        resized = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return np.stack([self._lut[c][resized[..., c]] for c in range(3)])

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return np.zeros((0, 3, self.size, self.size), dtype=np.float32)
        return np.stack([self.one(c) for c in crops]).astype(np.float32, copy=False)
