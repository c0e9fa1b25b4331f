"""Quality flags: the yaw measure, each reason at its threshold, and the quality formula (worst ratio)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agegender.faces import (
    BLUR_THRESHOLD,
    LOW_SCORE_THRESHOLDS,
    MIN_FACE_SIZE,
    UTKFACE_TEMPLATE,
    YAW_THRESHOLD,
    Detection,
    yaw_ratio,
)
from agegender.faces.flags import assess

SHARP = {"blur": 50.0, "blur_threshold": BLUR_THRESHOLD}


def _rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return points @ rot.T


def _face(size: float = 100.0, score: float = 1.0, nose_shift: float = 0.0) -> Detection:
    """A detection whose landmarks are the UTKFace template with the nose moved by ``nose_shift`` eye distances."""
    marks = UTKFACE_TEMPLATE.astype(np.float64).copy()
    marks[2, 0] += nose_shift * (marks[1, 0] - marks[0, 0])
    return Detection((0, 0, size, size), score, marks)


def test_yaw_ratio_frontal_turned_and_rolled() -> None:
    frontal = UTKFACE_TEMPLATE.astype(np.float64)
    assert abs(yaw_ratio(frontal)) < 0.01  # the template is frontal
    turned = _face(nose_shift=0.4).landmarks
    assert yaw_ratio(turned) == pytest.approx(0.4 + yaw_ratio(frontal), abs=1e-4)
    assert yaw_ratio(_face(nose_shift=-0.4).landmarks) == pytest.approx(-0.4 + yaw_ratio(frontal), abs=1e-4)
    # A tilted head (roll) is not a turned one: the offset is measured along the eye line.
    assert yaw_ratio(_rotate(turned, 30)) == pytest.approx(yaw_ratio(turned), abs=1e-4)
    assert math.isnan(yaw_ratio(np.zeros((5, 2))))


def test_nothing_flagged_gives_quality_one() -> None:
    flags = assess(_face(), SHARP, "mtcnn")
    assert flags.reasons == [] and flags.quality == 1.0 and flags.message == ""


@pytest.mark.parametrize(
    "detection, measures, reason, ratio",
    [
        (_face(size=20), SHARP, "small", 20 / MIN_FACE_SIZE),
        (_face(), {"blur": BLUR_THRESHOLD / 4, "blur_threshold": BLUR_THRESHOLD}, "blurry", 0.25),
        (_face(score=1 - 2 * (1 - LOW_SCORE_THRESHOLDS["mtcnn"])), SHARP, "low_score", 0.5),
        (_face(nose_shift=2 * YAW_THRESHOLD), SHARP, "turned", 0.5),
    ],
    ids=["small", "blurry", "low_score", "turned"],
)
def test_each_reason_and_its_ratio(detection: Detection, measures: dict, reason: str, ratio: float) -> None:
    flags = assess(detection, measures, "mtcnn")
    assert flags.reasons == [reason]
    assert flags.ratios[reason] == pytest.approx(ratio, abs=0.01)
    assert flags.quality == pytest.approx(ratio, abs=0.01)
    assert flags.message.startswith("low quality: ")


def test_quality_is_the_worst_ratio_and_never_one_when_flagged() -> None:
    blurry = {"blur": 0.8 * BLUR_THRESHOLD, "blur_threshold": BLUR_THRESHOLD}
    flags = assess(_face(size=30), blurry, "mtcnn")
    assert flags.reasons == ["small", "blurry"]
    assert flags.quality == pytest.approx(0.75, abs=0.001)  # small: 30/40 is worse than blurry: 0.8
    just_below = assess(_face(size=MIN_FACE_SIZE - 0.01), SHARP, "mtcnn")
    assert just_below.reasons == ["small"] and just_below.quality < 1.0
    assert assess(_face(size=MIN_FACE_SIZE), SHARP, "mtcnn").reasons == []  # the threshold itself is fine


def test_score_thresholds_are_per_detector() -> None:
    weak = _face(score=0.95)  # below mtcnn's threshold, above haar's and yunet's
    assert assess(weak, SHARP, "mtcnn").reasons == ["low_score"]
    assert assess(weak, SHARP, "haar").reasons == []
    assert assess(weak, SHARP, "some_plugin").reasons == []  # unknown detector: no score flag
    assert assess(weak, SHARP, "some_plugin", score_threshold=0.99).reasons == ["low_score"]


def test_no_landmarks_means_no_turned_flag() -> None:
    flags = assess(Detection((0, 0, 100, 100), 1.0), SHARP, "haar")
    assert "turned" not in flags.reasons and flags.ratios["turned"] == 1.0
