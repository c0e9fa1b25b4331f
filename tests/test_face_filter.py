"""The min_face / min_quality options: validation shared by every front end, and which faces they skip."""

from __future__ import annotations

import math

import pytest

from agegender.face_filter import FILTER_HELP, QualityFilter
from agegender.faces import Detection
from agegender.faces.flags import FaceFlags


def test_defaults_keep_everything() -> None:
    keep = QualityFilter()
    assert (keep.min_face, keep.min_quality) == (0.0, 0.0)
    tiny = Detection((0, 0, 1, 1), 0.1)
    assert keep.skip_message(tiny, FaceFlags(["small", "low_score"], 0.0)) is None


@pytest.mark.parametrize(
    "values, error",
    [
        ({"min_quality": 2}, "between 0 and 1"),
        ({"min_quality": "-0.1"}, ">= 0"),
        ({"min_face": "ten"}, "must be a number"),
        ({"min_face": math.inf}, "finite"),
        ({"min_face": "nan"}, "finite"),
    ],
)
def test_invalid_values_are_refused(values: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        QualityFilter(**values)


def test_from_values_parses_text_and_ignores_blanks() -> None:
    assert QualityFilter.from_values({"min_face": "40", "min_quality": ""}) == QualityFilter(40, 0)
    assert QualityFilter.from_values({"min_quality": "0.5", "other": "x"}) == QualityFilter(0, 0.5)
    assert QualityFilter.check("min_quality", "1") == 1.0
    with pytest.raises(ValueError, match="unknown option"):
        QualityFilter.check("max_face", 3)
    assert set(FILTER_HELP) == {"min_face", "min_quality"}


def test_skip_message_by_size_then_quality() -> None:
    rule = QualityFilter(min_face=40, min_quality=0.5)
    face = Detection((0, 0, 60, 30), 0.99)  # shorter side 30 px
    assert "below min_face 40" in rule.skip_message(face, FaceFlags())
    big = Detection((0, 0, 100, 100), 0.99)
    assert rule.skip_message(big, FaceFlags(["blurry"], 0.5)) is None  # at the minimum: kept
    message = rule.skip_message(big, FaceFlags(["blurry", "turned"], 0.49))
    assert "quality 0.49 (blurry, turned) is below min_quality 0.5" in message
