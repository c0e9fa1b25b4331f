"""Face detectors behind one small interface, so callers can swap accuracy for weight without code changes.

One module per detector (:mod:`.haar`, :mod:`.yunet`, :mod:`.mtcnn`, :mod:`.blazeface`) on the base class and
registry in :mod:`.base`; ``auto`` (below) picks BlazeFace (or MTCNN) when its files and runtime work, else the
Haar cascade, so an optional back-end degrades instead of breaking the pipeline.
"""

from __future__ import annotations

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
    check_detector_spec,
    create_detector,
    detector_options,
    detector_takes,
    parse_detector_spec,
    register_detector,
)
from agegender.faces.detectors.blazeface import BlazeFaceDetector
from agegender.faces.detectors.haar import HaarDetector
from agegender.faces.detectors.mtcnn import MTCNNDetector
from agegender.faces.detectors.yunet import YUNET_ENV, YuNetDetector

__all__ = [
    "LANDMARK_NAMES",
    "MAX_SIDE",
    "AUTO_ORDER",
    "YUNET_ENV",
    "BlazeFaceDetector",
    "Detection",
    "FaceDetector",
    "HaarDetector",
    "MTCNNDetector",
    "YuNetDetector",
    "as_rgb_uint8",
    "available_detectors",
    "check_detector_spec",
    "create_detector",
    "detector_options",
    "detector_takes",
    "parse_detector_spec",
    "register_detector",
]

_COMMON_OPTIONS = ("min_face_size", "score_threshold", "max_side")


#: Detectors ``auto`` tries, in order, before the Haar cascade. BlazeFace first: in benchmarks/results/detectors.md
#: the whole pipeline ran 1.6x (small photos) to 5x (large) faster than with MTCNN, with the same MAE and gender
#: accuracy on the validation photos; it finds nearly the faces MTCNN finds (413 of its 415 on the validation photos,
#: the two missed under 30 px; benchmarks/results/detector_recall_*.md) and flags more faces ``low_score`` (README
#: "Face detectors").
AUTO_ORDER: tuple[type[FaceDetector], ...] = (BlazeFaceDetector, MTCNNDetector)


@register_detector("auto")
def _auto_detector(**kwargs: Any) -> FaceDetector:
    """The first of :data:`AUTO_ORDER` that works (BlazeFace, then MTCNN: both give landmarks for alignment), else
    the Haar cascade.

    Options choose among them: the first detector that takes every option given is tried first
    (``auto:landmark_vote=False`` is MTCNN as published), and each tried detector gets the options it takes; a spec
    option none of them takes is refused by ``create_detector`` (:func:`_auto_options`).
    """
    takes_all = [cls for cls in AUTO_ORDER if set(kwargs) <= set(detector_options(cls) or kwargs)]
    for cls in takes_all + [cls for cls in AUTO_ORDER if cls not in takes_all]:
        try:
            detector = cls(**_accepted(cls, kwargs))
            detector.detect(np.zeros((48, 48, 3), dtype=np.uint8))  # fail now, not on the first user photo
            return detector
        except Exception as e:  # any broken optional back-end must fall back, whatever it raises
            warnings.warn(f"{cls.name} face detector unavailable ({e}); trying the next one", stacklevel=2)
    warnings.warn("falling back to the Haar cascade face detector", stacklevel=2)
    return HaarDetector(**{k: v for k, v in kwargs.items() if k in _COMMON_OPTIONS})


def _auto_options() -> list[str]:
    """What ``auto`` takes: the options of any detector it may build (a misspelt one must not vanish)."""
    return sorted(set(_COMMON_OPTIONS).union(*(detector_options(cls) or () for cls in AUTO_ORDER)))


_auto_detector.options = _auto_options  # type: ignore[attr-defined]


def _accepted(cls: type[FaceDetector], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = detector_options(cls) or ()
    return {k: v for k, v in kwargs.items() if k in names}
