"""OpenCV's Haar cascade: always available (it ships with OpenCV), no landmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from agegender.errors import DetectorModelError
from agegender.faces.detectors.base import MAX_SIDE, Detection, FaceDetector, register_detector

__all__ = ["HaarDetector"]


@register_detector("haar")
class HaarDetector(FaceDetector):
    """OpenCV's frontal-face Haar cascade: no extra files or runtimes, but no landmarks and more misses.

    ``score`` is ``1 - 1/(1 + n)`` for ``n`` merged raw hits (OpenCV's "neighbours"), so more agreement
    means a higher score; ``score_threshold`` 0.75 keeps boxes found by at least 3 raw hits.
    """

    name = "haar"

    def __init__(
        self,
        min_face_size: float = 20.0,
        score_threshold: float = 0.75,
        cascade: str = "haarcascade_frontalface_default.xml",
        scale_factor: float = 1.1,
        max_side: int | None = MAX_SIDE,
    ) -> None:
        super().__init__(min_face_size, score_threshold, max_side)
        path = Path(cv2.data.haarcascades) / cascade
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise DetectorModelError(f"Haar cascade not found or unreadable: {path}")
        self.scale_factor = scale_factor

    def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        side = max(1, int(min_size))
        boxes, counts = self._cascade.detectMultiScale2(
            gray, scaleFactor=self.scale_factor, minNeighbors=1, minSize=(side, side)
        )
        return [
            Detection((x, y, x + w, y + h), 1.0 - 1.0 / (1.0 + n), None)
            for (x, y, w, h), n in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(counts).ravel(), strict=True)
        ]
