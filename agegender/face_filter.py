"""The user's rule for dropping faces (``min_face``, ``min_quality``): one definition for every front end.

The CLI, the HTTP API, the web demo and ``Predictor`` all build a :class:`QualityFilter`, so the options
validate alike everywhere. Kept free of heavy imports: the CLI builds its parser from :data:`FILTER_HELP`
on every start. What "quality" means is defined in :mod:`agegender.faces.flags`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agegender.faces.detectors import Detection
    from agegender.faces.flags import FaceFlags

__all__ = ["FILTER_HELP", "QualityFilter"]

#: Help text for the two options, shared by the CLI, the HTTP API docs and the web demo.
FILTER_HELP = {
    "min_face": "skip faces whose box is shorter than this many pixels (default 0: estimate every face)",
    "min_quality": "skip faces whose quality (0-1, 1 = nothing flagged) is below this (default 0: keep all)",
}


def _check(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if name == "min_quality" and number > 1:
        raise ValueError(f"min_quality must be between 0 and 1, got {value!r}")
    return number


@dataclass(frozen=True)
class QualityFilter:
    """The user's rule for dropping faces: ``min_face`` (px, shorter box side) and ``min_quality`` (0-1).

    The one definition of these options: the CLI, the HTTP API and the web demo all build one of these, so
    they validate the same way. The defaults (0, 0) keep every face.
    """

    min_face: float = 0.0
    min_quality: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_face", _check("min_face", self.min_face))
        object.__setattr__(self, "min_quality", _check("min_quality", self.min_quality))

    @staticmethod
    def check(name: str, value: Any) -> float:
        """One option's value as a float; ValueError with a message for a person when it is out of range."""
        if name not in FILTER_HELP:
            raise ValueError(f"unknown option {name!r}; known: {sorted(FILTER_HELP)}")
        return _check(name, value)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> QualityFilter:
        """From text fields (form, query, widgets): missing or empty values take the defaults."""
        given = {k: values[k] for k in FILTER_HELP if values.get(k) not in (None, "")}
        return cls(**given)

    def skip_message(self, detection: Detection, flags: FaceFlags) -> str | None:
        """Why this face is dropped, or None to estimate it."""
        if detection.size < self.min_face:
            return f"skipped: face is {detection.size:.0f} px, below min_face {self.min_face:g} px"
        if flags.quality < self.min_quality:
            why = f" ({', '.join(flags.reasons)})" if flags.reasons else ""
            return f"skipped: quality {flags.quality:.2f}{why} is below min_quality {self.min_quality:g}"
        return None
