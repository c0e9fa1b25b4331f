"""argparse types with ranges: a bad number is refused while parsing, with a message that says what is allowed,
instead of surfacing later as an empty output or a Python error from deep inside."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, lo: float | None, hi: float | None, what: str) -> Callable[[str], float]:
    """A parser for ``kind`` values in ``[lo, hi]``; ``what`` completes "must be ..." in its message."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if (isinstance(value, float) and not math.isfinite(value)) or (lo is not None and value < lo):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


positive_int = _number(int, 1, None, "a whole number >= 1")
non_negative_int = _number(int, 0, None, "a whole number >= 0")
positive_float = _number(float, math.ulp(0.0), None, "a number > 0")
non_negative_float = _number(float, 0.0, None, "a number >= 0")
fraction = _number(float, 0.0, 1.0, "a number between 0 and 1")
port = _number(int, 0, 65535, "a port number between 0 and 65535")


#: ``--detector`` help, one text for every command that finds faces (names: agegender.faces.available_detectors).
DETECTOR_HELP = (
    "face detector NAME[:option=value,...]: auto (= blazeface), blazeface, mtcnn, haar, yunet; options are the "
    "detector's constructor arguments, e.g. mtcnn:landmark_vote=False (the cascade as published) or "
    "mtcnn:min_face_size=40"
)
