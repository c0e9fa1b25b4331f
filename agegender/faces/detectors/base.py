"""The detector interface: :class:`Detection`, the :class:`FaceDetector` base class and the registry.

Every detector takes an RGB ``uint8`` image and returns :class:`Detection` objects sorted by score (highest
first); subclasses implement only ``_detect``. Detectors are looked up by name (:func:`create_detector`).
"""

from __future__ import annotations

import ast
import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from agegender.errors import ConfigError
from agegender.registry import Registry

__all__ = [
    "LANDMARK_NAMES",
    "MAX_SIDE",
    "Detection",
    "FaceDetector",
    "as_rgb_uint8",
    "available_detectors",
    "check_detector_spec",
    "create_detector",
    "detector_options",
    "detector_takes",
    "parse_detector_spec",
    "register_detector",
]

#: Order of the five landmarks every detector reports (image-left eye first, as the viewer sees it).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: The smallest face side (photo pixels) any detector is asked for: MTCNN's P-net window.
SMALLEST_FACE = 12.0
#: Default cap on the longer image side that detectors search at (see ``FaceDetector.detect``).
MAX_SIDE = 1600


@dataclass
class Detection:
    """One face: box ``(x1, y1, x2, y2)`` in pixels, confidence, and optional 5x2 landmarks."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.box = tuple(float(v) for v in self.box)  # type: ignore[assignment]
        self.score = float(self.score)
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> float:
        """Shorter box side: what "too small to be useful" is judged on."""
        return min(self.width, self.height)

    def scaled(self, factor: float) -> Detection:
        """The same face with box and landmarks multiplied by ``factor`` (e.g. from a reduced image to the photo)."""
        marks = None if self.landmarks is None else self.landmarks * factor
        return Detection(tuple(v * factor for v in self.box), self.score, marks)


class FaceDetector(ABC):
    """Common checks and filtering; subclasses only implement :meth:`_detect`."""

    name: str = "base"
    #: Whether :meth:`detect` may run on several images at once (shared state only in thread-safe objects,
    #: such as ONNX Runtime sessions); ``Predictor.predict_batch`` then detects images in parallel.
    thread_safe: bool = False
    #: > 0: when the usual search finds no face in a photo whose shorter side is under
    #: ``min_face_size / small_photo_share``, search it again for faces down to that share of the shorter side
    #: (never below :data:`SMALLEST_FACE`): a thumbnail's face is small. Photos with a face keep their answers.
    small_photo_share: float = 0.0

    def __init__(
        self,
        min_face_size: float = 20.0,
        score_threshold: float = 0.5,
        max_side: int | None = MAX_SIDE,
        small_photo_share: float = 0.0,
    ) -> None:
        self.min_face_size = float(min_face_size)
        self.score_threshold = float(score_threshold)
        self.max_side = max_side
        self.small_photo_share = float(small_photo_share)

    def detect(self, image_rgb: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """Faces in ``image_rgb`` (HxWx3 uint8 RGB), best first, filtered by size and score.

        Photos larger than ``max_side`` are searched at that size (boxes are mapped back): a 12 MP phone
        picture would otherwise take seconds per detector, for faces far above any useful size. ``scale`` is how
        many photo pixels one pixel of ``image_rgb`` stands for (a photo decoded at reduced size): the minimum
        face size stays in photo pixels, so a reduced decode finds the same faces; boxes stay in image pixels.
        """
        image = as_rgb_uint8(image_rgb)
        height, width = image.shape[:2]
        if min(height, width) < 2:
            return []
        found = self._search(image, self.min_face_size, scale)
        if found:
            return found
        small = self.small_face_size(height, width, scale)  # a thumbnail's face may be under the usual minimum
        return self._search(image, small, scale) if small < self.min_face_size else []

    def small_face_size(self, height: int, width: int, scale: float = 1.0) -> float:
        """The smallest face (photo pixels) sought in a ``height`` x ``width`` image when the usual search finds
        none: ``small_photo_share`` of the photo's shorter side, never below :data:`SMALLEST_FACE`."""
        if self.small_photo_share <= 0:
            return self.min_face_size
        return min(self.min_face_size, max(SMALLEST_FACE, self.small_photo_share * min(height, width) * scale))

    def _search(self, image: np.ndarray, min_face: float, scale: float) -> list[Detection]:
        """One search for faces from ``min_face`` photo pixels up, at most ``max_side`` pixels wide, best first."""
        min_face /= scale
        height, width = image.shape[:2]
        factor = 1.0 if not self.max_side else min(1.0, self.max_side / max(height, width))
        if factor < 1.0:
            size = (max(2, round(width * factor)), max(2, round(height * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        raw = self._detect(image, min_face * factor)
        found = [d.scaled(1.0 / factor) for d in raw] if factor < 1.0 else raw
        found = [d for d in found if d.score >= self.score_threshold and d.size >= min_face]
        return sorted(found, key=lambda d: d.score, reverse=True)

    @abstractmethod
    def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
        """Raw detections for a validated RGB uint8 image; ``min_size`` is the smallest face side to seek."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_face_size={self.min_face_size}, score_threshold={self.score_threshold})"


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Accept the shapes users actually pass (gray, RGBA) but refuse anything that is not 8-bit pixels."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)


DETECTORS: Registry[Callable[..., FaceDetector]] = Registry("face detector")
#: Class/factory decorator: make a detector creatable by ``name``.
register_detector = DETECTORS.register


def available_detectors() -> list[str]:
    """Registered detector names (``auto`` included); whether a back-end works is checked on creation."""
    return DETECTORS.names()


def parse_detector_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"mtcnn:min_face_ratio=0.1,landmark_vote=False"`` -> ``("mtcnn", {"min_face_ratio": 0.1, "landmark_vote":
    False})``: a detector name, then its options as ``key=value`` pairs, values read as Python literals (numbers,
    True, False, None, tuples) and kept as strings otherwise. Lets a command line choose options, not just a
    detector; commas inside brackets stay in the value (``mtcnn:stage_thresholds=(0.5,0.6)``)."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in re.split(r",(?![^()\[\]]*[)\]])", rest))):
        key, sep, value = (t.strip() for t in item.partition("="))
        if not sep or not key.isidentifier():
            raise ConfigError(
                f"face detector option {item!r} in {spec!r}: expected key=value, e.g. mtcnn:min_face_size=30"
            )
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return name.strip(), options


def detector_options(factory: Callable[..., FaceDetector]) -> list[str] | None:
    """The option names a registered detector factory takes, in its order; None: any. A factory that takes
    ``**kwargs`` (``auto``) says which by an ``options`` attribute, a callable returning them."""
    declared = getattr(factory, "options", None)
    if callable(declared):
        return list(declared())
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return list(params)


def detector_takes(spec: str, option: str) -> bool:
    """Whether the detector a spec names declares ``option`` (``num_threads``: callers that budget threads, Ray
    actors and alignment workers, give it only to detectors that take it)."""
    takes = detector_options(_resolve(spec)[0])
    return takes is not None and option in takes


def _check_values(base: str, factory: Callable[..., FaceDetector], options: dict[str, Any]) -> None:
    """An option whose default is a number or a bool must be given one (``min_face_size=abc`` would otherwise
    fail deep inside the detector, as a bug)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    for key, value in options.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"face detector {base!r}: option {key}={value!r} must be True or False")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(default, int | float) and not isinstance(default, bool) and not number:
            raise ConfigError(f"face detector {base!r}: option {key}={value!r} must be a number")


def _resolve(spec: str, **extra: Any) -> tuple[Callable[..., FaceDetector], dict[str, Any]]:
    """The factory and options a spec names (with ``extra`` added); a bad name or option is a :class:`ConfigError`."""
    base, options = parse_detector_spec(spec)
    options = {**options, **extra}
    factory = DETECTORS.get(base)
    takes = detector_options(factory)
    unknown = [] if takes is None else sorted(set(options) - set(takes))
    if unknown:
        raise ConfigError(f"face detector {base!r} has no option {', '.join(unknown)}; it takes: {', '.join(takes)}")
    _check_values(base, factory, options)
    return factory, options


def check_detector_spec(spec: str) -> None:
    """Refuse a bad detector name or option now, without building the detector (no model loaded)."""
    _resolve(spec)


def create_detector(name: str = "auto", **kwargs: Any) -> FaceDetector:
    """Build a registered detector from its name or a spec ``NAME:key=value,...`` (:func:`parse_detector_spec`);
    ``kwargs`` add to and override the spec's options. Unknown names list the known ones, unknown options the
    ones that detector takes."""
    factory, options = _resolve(name, **kwargs)
    return factory(**options)
