"""Quality flags: why an estimate for a face may be less reliable.

Every detected face is estimated; a face that is small, blurry, weakly detected or strongly turned is
estimated too but marked ``low_quality`` with its ``reasons`` (refusing such faces left 7-17% of the faces
in real photos without any answer). Users who prefer no answer to a shaky one set a ``QualityFilter``
(``agegender/face_filter.py``); the faces it drops stay in the results as ``skipped``, with their reasons.

Each check is a ratio "measure relative to its threshold", capped at 1, with < 1 meaning flagged; the face's
``quality`` is the worst ratio, so 1 means nothing flagged and 0.5 means "half way to the threshold" on the
worst check (e.g. a 20 px face with the 40 px limit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agegender.faces.detectors import Detection

__all__ = [
    "LOW_SCORE_THRESHOLDS",
    "MIN_FACE_SIZE",
    "REASONS",
    "YAW_THRESHOLD",
    "FaceFlags",
    "assess",
    "yaw_ratio",
]

#: Faces whose box is shorter than this (pixels) are flagged "small": a 200 px chip would be mostly
#: interpolation, and age cues (wrinkles, skin texture) are gone.
MIN_FACE_SIZE = 40.0

# The two thresholds below were measured on the same 500 UTKFace chips (seed 0, 50 px black border) as the
# template in ``align.py``, with the detectors configured as in ``agegender.faces.template``.

#: |nose offset from the eye midpoint, along the eye line| / eye distance (see :func:`yaw_ratio`) above which
#: a face is "turned". UTKFace (MTCNN landmarks, 498 chips): median 0.06, 95th percentile 0.24, 99th 0.31,
#: max 0.44. The 99th percentile is used: turned further than 99% of training faces. With the nose tip about
#: half an eye distance in front of the eyes, the ratio is roughly 0.5 * tan(yaw), so 0.31 is about 32 degrees.
YAW_THRESHOLD = 0.31

#: Detector confidence below which a face is flagged "low_score": the 5th percentile of each detector's score
#: on UTKFace chips (``python -m agegender.faces.template --images ../shared/data/utkface/images --n 500``:
#: mtcnn 499, haar 491, blazeface 499 chips; yunet 499 chips with ``--yunet-model``), i.e. less sure than for 95%
#: of training faces, the same convention as the blur threshold. Scores are not comparable across detectors, hence
#: one value each (BlazeFace reports MTCNN O-net's score on its own boxes, a distribution of its own); detectors
#: not listed here are never flagged for their score.
LOW_SCORE_THRESHOLDS: dict[str, float] = {"mtcnn": 0.979, "haar": 0.931, "yunet": 0.921, "blazeface": 0.971}

#: Every reason a face can be flagged for, in the order they are reported.
REASONS = ("small", "blurry", "low_score", "turned")


def yaw_ratio(landmarks: np.ndarray) -> float:
    """Signed horizontal offset of the nose from the eye midpoint, in eye distances (0 = frontal).

    Measured along the line through the eyes, so a tilted (rolled) head is not mistaken for a turned one.
    """
    marks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eyes = marks[1] - marks[0]
    dist = float(np.hypot(*eyes))
    if dist < 1e-6:
        return math.nan
    return float(np.dot(marks[2] - (marks[0] + marks[1]) / 2, eyes / dist) / dist)


@dataclass(frozen=True)
class FaceFlags:
    """What the checks found for one face: flagged reasons, the quality in [0, 1] and a sentence."""

    reasons: list[str] = field(default_factory=list)
    quality: float = 1.0
    message: str = ""
    ratios: dict[str, float] = field(default_factory=dict)  # per check: measure / threshold, capped at 1


def _ratio(value: float) -> float:
    return 1.0 if math.isnan(value) else min(1.0, max(0.0, value))


def assess(
    detection: Detection,
    measures: Mapping[str, Any],
    detector_name: str = "",
    min_face_size: float = MIN_FACE_SIZE,
    score_threshold: float | None = None,
    yaw_threshold: float = YAW_THRESHOLD,
) -> FaceFlags:
    """Flags for a detection and its chip ``measures`` (``face_quality``'s blur and blur_threshold).

    ``score_threshold`` defaults to the detector's entry in :data:`LOW_SCORE_THRESHOLDS`.
    """
    threshold = LOW_SCORE_THRESHOLDS.get(detector_name) if score_threshold is None else score_threshold
    yaw = yaw_ratio(detection.landmarks) if detection.landmarks is not None else math.nan
    ratios = {
        "small": _ratio(detection.size / min_face_size) if min_face_size > 0 else 1.0,
        "blurry": _ratio(measures["blur"] / measures["blur_threshold"]) if measures["blur_threshold"] > 0 else 1.0,
        # "allowed doubt / actual doubt": a score of 0.9 with threshold 0.979 is 0.021 / 0.1 = 0.21
        "low_score": 1.0 if threshold is None else _ratio((1 - threshold) / max(1 - detection.score, 1e-9)),
        "turned": _ratio(yaw_threshold / abs(yaw)) if abs(yaw) > 0 else 1.0,
    }
    reasons = [r for r in REASONS if ratios[r] < 1.0]
    notes = {
        "small": f"small face ({detection.width:.0f}x{detection.height:.0f} px, below {min_face_size:g} px)",
        "blurry": f"blurry (sharpness {measures['blur']:.1f} < {measures['blur_threshold']:.1f})",
        "low_score": f"uncertain detection (score {detection.score:.3f} < {threshold})",
        "turned": f"head turned (nose offset {abs(yaw):.2f} of the eye distance > {yaw_threshold:g})",
    }
    # floor, not round: a flagged face must never show quality 1.0
    quality = math.floor(min(ratios.values()) * 1000) / 1000
    message = "; ".join(notes[r] for r in reasons)
    if message:
        message = f"low quality: {message}; the estimate is less reliable"
    return FaceFlags(reasons, quality, message, ratios)
