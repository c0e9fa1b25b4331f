"""OpenCV's YuNet (``cv2.FaceDetectorYN``) with a model file the user supplies."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from agegender.errors import DetectorModelError
from agegender.faces.detectors.base import MAX_SIDE, Detection, FaceDetector, register_detector

__all__ = ["YUNET_ENV", "YuNetDetector"]

#: Environment variable naming a YuNet ``.onnx`` file, used when ``model_path`` is not given.
YUNET_ENV = "AGEGENDER_YUNET_MODEL"


@register_detector("yunet")
class YuNetDetector(FaceDetector):
    """OpenCV's YuNet (``cv2.FaceDetectorYN``): fast and accurate with landmarks, model file supplied by user.

    The ``.onnx`` file is not shipped (and never downloaded): pass ``model_path=`` or set ``AGEGENDER_YUNET_MODEL``.
    """

    name = "yunet"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        min_face_size: float = 20.0,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        max_side: int | None = MAX_SIDE,
    ) -> None:
        super().__init__(min_face_size, score_threshold, max_side)
        path = _find_yunet_model(model_path)
        self.model_path = path
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, top_k)
        except cv2.error:
            raise DetectorModelError(f"{path}: OpenCV cannot load it as a YuNet face detector (.onnx)") from None

    def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
        h, w = image.shape[:2]
        self._net.setInputSize((w, h))
        _, faces = self._net.detect(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        # Rows: x, y, w, h, 5 landmark (x, y) pairs (subject's right eye = image-left eye first), score.
        return [Detection((f[0], f[1], f[0] + f[2], f[1] + f[3]), f[14], f[4:14].reshape(5, 2)) for f in faces]


def _find_yunet_model(model_path: str | os.PathLike[str] | None) -> Path:
    """Resolve the YuNet file, failing with a message that says every place that was tried."""
    candidates = [("model_path argument", model_path), (f"${YUNET_ENV}", os.environ.get(YUNET_ENV))]
    tried = []
    for origin, value in candidates:
        if not value:
            tried.append(f"{origin} (not set)")
            continue
        path = Path(value).expanduser()
        if path.is_file():
            return path
        tried.append(f"{origin}: {path.resolve()} (no such file)")
    raise DetectorModelError(
        "YuNet face detector model (.onnx, e.g. face_detection_yunet_2023mar.onnx from opencv_zoo) not found; "
        "looked at: " + "; ".join(tried) + ". Pass model_path=... or use detector 'mtcnn' or 'haar'."
    )
