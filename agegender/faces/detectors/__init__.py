"""Face detectors behind one small interface, so callers can swap accuracy for weight without code changes.

One module per detector (:mod:`.haar`, :mod:`.yunet`, :mod:`.mtcnn`, :mod:`.blazeface`) on the base class and
registry in :mod:`.base`; ``auto`` (below) picks BlazeFace with MTCNN landmarks when it works, else MTCNN, else the
Haar cascade, so an optional back-end degrades instead of breaking the pipeline.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

from agegender.faces.detectors.base import (
    LANDMARK_NAMES,
    MAX_SIDE,
    Detection,
    FaceDetector,
    as_rgb_uint8,
    available_detectors,
    create_detector,
    register_detector,
)
from agegender.faces.detectors.blazeface import BlazeFaceDetector
from agegender.faces.detectors.haar import HaarDetector
from agegender.faces.detectors.mtcnn import MTCNNDetector
from agegender.faces.detectors.yunet import YUNET_ENV, YuNetDetector

__all__ = [
    "LANDMARK_NAMES",
    "MAX_SIDE",
    "YUNET_ENV",
    "BlazeFaceDetector",
    "Detection",
    "FaceDetector",
    "HaarDetector",
    "MTCNNDetector",
    "YuNetDetector",
    "as_rgb_uint8",
    "available_detectors",
    "create_detector",
    "register_detector",
]

_COMMON_OPTIONS = ("min_face_size", "score_threshold", "max_side")


@register_detector("auto")
def _auto_detector(**kwargs: Any) -> FaceDetector:
    """BlazeFace + MTCNN O-net (fastest, MTCNN's landmarks), else MTCNN, else the Haar cascade (no landmarks).

    BlazeFace is the default since benchmarks/detectors.py (README "Face detectors"); options only one detector
    knows (MTCNN's ``second_pass``, ...) go to the detectors that take them.
    """
    for cls in (BlazeFaceDetector, MTCNNDetector):
        try:
            detector = cls(**_accepted(cls, kwargs))
            detector.detect(np.zeros((48, 48, 3), dtype=np.uint8))  # fail now, not on the first user photo
            return detector
        except Exception as e:  # any broken optional back-end must fall back, whatever it raises
            warnings.warn(f"{cls.name} face detector unavailable ({e}); trying the next one", stacklevel=2)
    warnings.warn("falling back to the Haar cascade face detector", stacklevel=2)
    return HaarDetector(**{k: v for k, v in kwargs.items() if k in _COMMON_OPTIONS})


def _accepted(cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    names = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in kwargs.items() if k in names}
