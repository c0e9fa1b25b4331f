"""MediaPipe's BlazeFace finds the faces, MTCNN's O-net gives each one its five landmarks.

BlazeFace runs once on a single downscaled copy of the photo (no image pyramid), on ONNX Runtime, which is what
makes it fast; but its six keypoints have no mouth corners and a different convention from the MTCNN landmarks the
shipped model's chips were aligned with. So each BlazeFace box is handed to MTCNN's last stage (O-net), which scores
it, refines it and places the five landmarks exactly as MTCNN would. Models: ``models/README.md``.

BlazeFace's less confident boxes (small, blurred, cut by the photo's edge) are not thrown away: MTCNN's middle stage
(R-net) vets them first, as it vets P-net's proposals in the MTCNN cascade, and O-net then decides as for the rest.
O-net judges a face on the square it is given, and BlazeFace frames some faces (turned, cut, blurred, small) so that
O-net turns them down; around every box that no found face covers, down to a faint 0.05, and that R-net does not
reject outright, MTCNN's whole cascade then searches, as it would have searched the photo, on a small mosaic of
those neighbourhoods (one short cascade a photo).

One look at 192 px misses faces under about 7% of the photo's longer side, where a group or class photo has most of
its faces. So where a look finds faces (or unsure boxes) near the bottom of its range, BlazeFace looks again at
the tiles of the photo around them, each half as wide as before, as MTCNN's image pyramid looks at every scale; a
portrait costs one look, a class photo a few more.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from agegender.errors import ConfigError, DetectorModelError
from agegender.faces.detectors.base import MAX_SIDE, Detection, FaceDetector, register_detector
from agegender.faces.detectors.mtcnn import SMALL_PHOTO_SHARE, MTCNNDetector, _square
from agegender.faces.detectors.onnx_net import OnnxNet

__all__ = ["BLAZEFACE_MODELS", "ONET_FRAMES", "BlazeFaceDetector", "BlazeModel"]

MODEL_DIR = Path(__file__).resolve().parent / "models"
#: The smallest face MTCNN seeks around a box (``local_search``: half the box's side, at least ``min_face_size``)
#: is scaled to this many px, so that R-net and O-net see it about as in MTCNN's own search (20 px and up).
LOCAL_MIN = 24.0
#: Black gap (px) between the cut-outs of the mosaic that ``local_search`` runs MTCNN on.
LOCAL_GAP = 24


class BlazeModel(NamedTuple):
    """One BlazeFace model: the geometry from MediaPipe's face_detection_*_common.pbtxt, the output names from the
    ONNX file (models/README.md)."""

    file: str
    side: int  # input side (px)
    strides: tuple[int, ...]  # anchor strides, one per output layer
    per_cell: int  # anchors per grid cell
    outputs: tuple[str, str]  # (scores, boxes and keypoints)


BLAZEFACE_MODELS: dict[str, BlazeModel] = {
    "short": BlazeModel("face_detection_short_range.onnx", 128, (8, 16, 16, 16), 2, ("classificators", "regressors")),
    "full": BlazeModel(
        "face_detection_full_range.onnx", 192, (4,), 1, ("reshaped_classifier_face_4", "reshaped_regressor_face_4")
    ),
}
#: O-net input square relative to a BlazeFace box, per model (dx, dy, side): centre = box centre + (dx * w,
#: dy * h), side = side * max(w, h). Medians of MTCNN's own O-net input squares against BlazeFace boxes on the
#: same (largest) face, over the first 300 APPA-REAL training photos (292 and 296 pairs for full and short).
ONET_FRAMES: dict[str, tuple[float, float, float]] = {
    "full": (-0.027, -0.041, 1.21),
    "short": (-0.028, -0.091, 1.29),
}


def _anchors(side: int, strides: tuple[int, ...], per_cell: int) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1], in the order of the model's outputs (MediaPipe's SsdAnchorsCalculator)."""
    out = []
    i = 0
    while i < len(strides):
        same = sum(1 for s in strides[i:] if s == strides[i])  # consecutive layers sharing a stride
        cells = side // strides[i]
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xs, ys = np.meshgrid(grid, grid)
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, same * per_cell, axis=0))
        i += same
    return np.concatenate(out)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS: each kept box is the score-weighted mean of the boxes overlapping it."""
    order = np.argsort(scores)[::-1]
    boxes, scores = boxes[order], scores[order]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    left = np.ones(len(boxes), dtype=bool)
    kept_boxes, kept_scores = [], []
    for i in range(len(boxes)):
        if not left[i]:
            continue
        w = np.clip(np.minimum(boxes[i, 2], boxes[:, 2]) - np.maximum(boxes[i, 0], boxes[:, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[:, 3]) - np.maximum(boxes[i, 1], boxes[:, 1]), 0, None)
        inter = w * h
        group = left & (inter / (area[i] + area - inter + 1e-9) > threshold)
        weights = scores[group]
        kept_boxes.append((boxes[group] * weights[:, None]).sum(0) / weights.sum())
        kept_scores.append(scores[i])
        left &= ~group
    return np.array(kept_boxes).reshape(-1, 4), np.array(kept_scores)


@register_detector("blazeface")
class BlazeFaceDetector(FaceDetector):
    """BlazeFace boxes (ONNX Runtime), MTCNN O-net landmarks and scores; full MTCNN when it finds none.

    ``model``: ``full`` (192 px input, faces up to ~5 m) or ``short`` (128 px, close-up faces). A BlazeFace box
    that O-net rejects is dropped (O-net is the verifier, as in MTCNN); a photo where nothing survives is searched
    by the whole MTCNN cascade (``fallback``), so faces that BlazeFace misses are still found, at MTCNN's cost.
    Boxes scored from ``weak_threshold`` up to ``blaze_threshold`` (at most ``max_weak`` a photo) go to O-net
    only if R-net passes them (``rnet_threshold``), each framed at every scale of ``weak_frames``: O-net keeps the
    best-scored framing, as it does among MTCNN's overlapping proposals (``weak_threshold=1``: no weak boxes).
    Zoom: a box scored over ``zoom_threshold`` and under ``zoom_below`` pixels of BlazeFace's input (a face it
    barely sees) makes BlazeFace look again at the tiles around it, each half the size of the last look (tiles
    overlap by a quarter), at most ``zoom_levels`` times (``zoom_levels=0``: one look at the whole photo).
    Choice of these values: benchmarks/detector_recall.py.
    Local search: around each box scored over ``local_search`` that no found face covers and that R-net scores
    over ``local_rnet`` (at its O-net square), MTCNN's whole cascade looks for the face, in a neighbourhood three
    times the box's side, for faces from half its side up, at most ``max_weak`` boxes a photo (``local_search=1``:
    off).
    ``num_threads``: ONNX Runtime threads per network (0: its default, all cores). One: the networks are small, a
    second thread that does not spin must be woken for each run, and ``predict`` searches two photos at once
    (pipeline 95.9 vs 84.1 photos/s with two, benchmarks/results/detectors.md).
    Scores and boxes are O-net's, so flags and box framing follow MTCNN's calibration. ``onet_passes`` 2 runs
    O-net a second time on its own refined box (about 1 ms a face), which brings the landmarks closer to MTCNN's.
    """

    name = "blazeface"
    thread_safe = True  # state: ONNX Runtime sessions (thread-safe), BlazeFace's and MTCNN's

    def __init__(
        self,
        model: str = "full",
        min_face_size: float = 20.0,
        score_threshold: float = 0.9,
        blaze_threshold: float = 0.5,
        weak_threshold: float = 0.1,
        rnet_threshold: float = 0.7,
        weak_frames: tuple[float, ...] = (1.0, 0.8),
        max_weak: int = 10,
        zoom_levels: int = 3,
        zoom_below: float = 20.0,
        zoom_threshold: float = 0.1,
        fallback: bool = True,
        onet_passes: int = 2,
        local_search: float = 0.05,
        local_rnet: float = 0.3,
        num_threads: int = 1,
        max_side: int | None = MAX_SIDE,
        small_photo_share: float = SMALL_PHOTO_SHARE,
    ) -> None:
        super().__init__(min_face_size, score_threshold, max_side, small_photo_share)  # as MTCNN's
        if model not in BLAZEFACE_MODELS:
            raise DetectorModelError(f"unknown BlazeFace model {model!r}; choose one of {sorted(BLAZEFACE_MODELS)}")
        spec = BLAZEFACE_MODELS[model]
        self.input_side = spec.side
        path = MODEL_DIR / spec.file
        if not path.is_file():
            raise DetectorModelError(f"BlazeFace model file {path} is missing (the package install is incomplete)")
        self.model = model
        self.blaze_threshold = float(blaze_threshold)
        self.weak_threshold = min(float(weak_threshold), self.blaze_threshold)
        self.rnet_threshold = float(rnet_threshold)
        try:
            self.weak_frames = tuple(float(k) for k in ((weak_frames,) if np.isscalar(weak_frames) else weak_frames))
        except (TypeError, ValueError):
            msg = f"weak_frames: scales for the weak boxes' O-net squares, e.g. (1.0,0.8), not {weak_frames!r}"
            raise ConfigError(msg) from None
        self.max_weak = max(0, int(max_weak))
        self.zoom_levels = max(0, int(zoom_levels))
        self.zoom_below = float(zoom_below)
        self.zoom_threshold = float(zoom_threshold)
        self.fallback = fallback
        self.onet_passes = max(1, int(onet_passes))
        self.local_search = float(local_search)
        self.local_rnet = float(local_rnet)
        self._net = OnnxNet(path, list(spec.outputs), num_threads)
        self._anchors = _anchors(spec.side, spec.strides, spec.per_cell)
        self._mtcnn = MTCNNDetector(
            min_face_size=min_face_size,
            score_threshold=score_threshold,
            num_threads=num_threads,
            max_side=max_side,
            small_photo_share=self.small_photo_share,
        )

    def detect(self, image_rgb: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """As :meth:`FaceDetector.detect`; when no face survives O-net, MTCNN's own search (with its second pass)."""
        found = super().detect(image_rgb, scale)
        if found or not self.fallback:
            return found
        return self._mtcnn.detect(image_rgb, scale)

    def boxes(self, image: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BlazeFace's own boxes (x1, y1, x2, y2 in pixels) and scores above ``threshold`` (default
        ``blaze_threshold``), overlaps merged, before O-net."""
        boxes, scores = self._anchor_boxes(image, self.blaze_threshold if threshold is None else threshold)
        return _weighted_nms(boxes, scores)

    def _closer(self, image: np.ndarray, boxes: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and scores (above ``weak_threshold``) from the closer looks at the tiles around the boxes too
        small for the last look (``boxes``, ``top``: the whole-photo look's, overlaps merged), only those the
        last look could barely see."""
        out_b, out_s = [np.empty((0, 4))], [np.empty(0)]
        tile = float(max(image.shape[:2]))
        for _ in range(self.zoom_levels):
            small = _side(boxes) * self.input_side / tile < self.zoom_below  # sizes at this look's input
            small &= top > self.zoom_threshold
            if not small.any() or tile / 2 < self.input_side / 2:  # nothing small, or tiles upscaled over 2x
                break
            tile /= 2
            looks = []
            for x, y in _tiles(image.shape[:2], tile, boxes[small]):
                b, s = self._anchor_boxes(image[y : y + int(tile), x : x + int(tile)], self.weak_threshold)
                looks.append((b + np.array([x, y, x, y]), s))
            boxes = np.concatenate([np.empty((0, 4))] + [b for b, _ in looks])
            scores = np.concatenate([np.empty(0)] + [s for _, s in looks])
            # larger boxes are the last look's to find, or parts of a face cut by the tile's edge
            keep = _side(boxes) * self.input_side / tile < 2 * self.zoom_below
            out_b.append(boxes[keep])
            out_s.append(scores[keep])
            boxes, top = _weighted_nms(boxes[keep], scores[keep])  # one box a face for the next level
        return np.concatenate(out_b), np.concatenate(out_s)

    def _anchor_boxes(self, image: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """One look: BlazeFace on ``image`` (a photo or a tile) letterboxed to its input; every anchor's box
        (pixels) and score above ``threshold``, overlaps not yet merged."""
        h, w = image.shape[:2]
        side = self.input_side
        scale = side / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (side - nw) // 2, (side - nh) // 2
        canvas = np.zeros((side, side, 3), dtype=np.uint8)
        canvas[py : py + nh, px : px + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        blob = (canvas.astype(np.float32) * (1 / 127.5) - 1.0).transpose(2, 0, 1)[None]
        scores_raw, regs = (o.reshape(len(self._anchors), -1) for o in self._net(blob))
        scores = 1.0 / (1.0 + np.exp(-np.clip(scores_raw[:, 0], -80, 80)))
        keep = scores > threshold
        reg, anchor = regs[keep, :4] / side, self._anchors[keep]
        centre, half = reg[:, :2] + anchor, reg[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        return (boxes * side - np.array([px, py, px, py])) / scale, scores[keep]

    def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
        every = self._anchor_boxes(image, min(self.weak_threshold, self.local_search))  # down to the faintest used
        boxes, scores = (a[every[1] > self.weak_threshold] for a in every)
        merged = _weighted_nms(boxes, scores)  # one box a face, for the weak boxes and the closer looks alike
        found = self._faces(image, boxes, scores, min_size, merged)
        closer_boxes, closer_scores = self._closer(image, *merged) if self.zoom_levels else (boxes[:0], scores[:0])
        if len(closer_boxes):
            # the closer looks add faces, never change the ones the whole-photo look found
            more = self._faces(image, closer_boxes, closer_scores, min_size)
            taken = self._taken(found)
            found += [d for d in more if not _overlaps(np.array([d.box]), taken)[0]]
        if self.local_search < 1:  # last: only the whole-photo look's boxes that no face found so far covers
            grouped, top = _weighted_nms(*every) if self.local_search < self.weak_threshold else merged
            found += self._searched(image, grouped[top > self.local_search], found, min_size)
        return found

    def _faces(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        scores: np.ndarray,
        min_size: float,
        merged: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> list[Detection]:
        """O-net's faces among the sure ``boxes`` and the weak ones R-net passes (``merged``: the boxes' weighted
        NMS, when the caller has it already)."""
        sure = scores > self.blaze_threshold
        squares = self._squares(_weighted_nms(boxes[sure], scores[sure])[0], min_size)
        if self.max_weak and not sure.all():
            # weak boxes: merged among all, so a weak box overlapping a sure face joins that face's group
            grouped, top = merged if merged is not None else _weighted_nms(boxes, scores)
            weak = self._squares(grouped[top <= self.blaze_threshold], min_size)[: self.max_weak]
            squares = np.concatenate([squares, self._vetted(image, weak)])
        if not len(squares):
            return []
        found = self._mtcnn.landmarks(image, squares)
        for _ in range(self.onet_passes - 1):
            # O-net again on its own refined boxes: its input then frames the face as in the MTCNN cascade
            # (median landmark gap to MTCNN's 1.5% -> 1.2% of the face size on 145 APPA-REAL val photos).
            refined = np.array([[d.box[0] + 1, d.box[1] + 1, d.box[2], d.box[3]] for d in found]).reshape(-1, 4)
            again = self._mtcnn.landmarks(image, np.fix(_square(refined))) if len(found) else []
            if len(again) != len(found):  # O-net changed its mind about a face: keep the first answer
                break
            found = again
        return found

    def _taken(self, found: list[Detection]) -> np.ndarray:
        """The boxes (N, 4) of the faces in ``found`` sure enough to be kept: new faces must not overlap them."""
        return np.array([d.box for d in found if d.score >= self.score_threshold], float).reshape(-1, 4)

    def _searched(
        self, image: np.ndarray, boxes: np.ndarray, found: list[Detection], min_size: float
    ) -> list[Detection]:
        """MTCNN's whole cascade (P-, R- and O-net) around the BlazeFace boxes that no found face covers.

        O-net alone misjudges a face that BlazeFace frames badly (cut, turned, blurred, small), where MTCNN's own
        proposals, refined by R-net, frame it as O-net expects. The boxes' neighbourhoods are searched as one
        mosaic (:func:`_mosaic`), so a photo costs one short cascade however many boxes it has; R-net vets the
        boxes first (``local_rnet``).
        """
        taken = self._taken(found)
        boxes = boxes[~_overlaps(boxes, taken) & (_side(boxes) >= min_size * 0.5)]
        if self.local_rnet > 0 and len(boxes):
            boxes = boxes[self._mtcnn.vet(image, _onet_squares(boxes, ONET_FRAMES[self.model]), self.local_rnet)]
        boxes = boxes[: self.max_weak]  # the best-scored few (boxes come in score order): a bounded mosaic
        if not len(boxes):
            return []
        mosaic, places = _mosaic(image, boxes, min_size)
        out: list[Detection] = []
        for d in self._mtcnn.cascade(mosaic, LOCAL_MIN):
            i = max(0, int(np.searchsorted(places[:, 0], (d.box[0] + d.box[2]) / 2, side="right")) - 1)  # its cut-out
            mx, x0, y0, k = places[i]
            box = (np.array(d.box) - [mx, 0, mx, 0]) / k + [x0, y0, x0, y0]
            marks = None if d.landmarks is None else (d.landmarks - [mx, 0]) / k + [x0, y0]
            if d.score < self.score_threshold or not _overlaps(box[None], boxes[i : i + 1])[0]:
                continue  # unsure, or another face of the neighbourhood: the photo's own looks decide on it
            if not _overlaps(box[None], np.concatenate([taken, *[np.array([o.box]) for o in out]]))[0]:
                out.append(Detection(tuple(box), d.score, marks))
        return out

    def _squares(self, boxes: np.ndarray, min_size: float) -> np.ndarray:
        """O-net input squares for the BlazeFace boxes whose shorter side is at least half ``min_size``."""
        boxes = boxes[np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= min_size * 0.5]
        return _onet_squares(boxes, ONET_FRAMES[self.model])

    def _vetted(self, image: np.ndarray, squares: np.ndarray) -> np.ndarray:
        """The weak boxes' O-net squares that R-net passes, once per scale of ``weak_frames`` (same centre)."""
        if not len(squares) or not self.weak_frames:
            return np.empty((0, 4))
        passed = squares[self._mtcnn.vet(image, squares, self.rnet_threshold)]
        centre, half = (passed[:, :2] + passed[:, 2:]) / 2, (passed[:, 2:3] - passed[:, :1]) / 2
        return np.fix(np.concatenate([np.hstack([centre - k * half, centre + k * half]) for k in self.weak_frames]))


def _mosaic(image: np.ndarray, boxes: np.ndarray, min_size: float) -> tuple[np.ndarray, np.ndarray]:
    """The neighbourhoods of ``boxes`` (three times a box's side, its smallest sought face at ``LOCAL_MIN`` px) side
    by side, ``LOCAL_GAP`` apart, and per cut-out its place: (mosaic x, photo x, photo y, scale)."""
    cuts, places = [], []
    x = 0
    for box in boxes:
        side = float(_side(box[None])[0])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = int(max(0, cx - 1.5 * side)), int(max(0, cy - 1.5 * side))
        x1, y1 = int(min(image.shape[1], cx + 1.5 * side)), int(min(image.shape[0], cy + 1.5 * side))
        cut, k = image[y0:y1, x0:x1], LOCAL_MIN / max(min_size, side * 0.5)  # faces from half the side up
        if k != 1:
            size = (max(1, round(cut.shape[1] * k)), max(1, round(cut.shape[0] * k)))
            cut = cv2.resize(cut, size, interpolation=cv2.INTER_AREA)
        cuts.append(cut)
        places.append((x, x0, y0, k))
        x += cut.shape[1] + LOCAL_GAP
    mosaic = np.zeros((max(c.shape[0] for c in cuts), x - LOCAL_GAP, 3), np.uint8)
    for cut, (mx, *_) in zip(cuts, places, strict=True):
        mosaic[: cut.shape[0], mx : mx + cut.shape[1]] = cut
    return mosaic, np.array(places, float)


def _onet_squares(boxes: np.ndarray, frame: tuple[float, float, float]) -> np.ndarray:
    """O-net input squares (MTCNN's 1-based inclusive, whole-pixel convention) for BlazeFace boxes."""
    dx, dy, k = frame
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2 + dx * w, (boxes[:, 1] + boxes[:, 3]) / 2 + dy * h
    half = k * np.maximum(w, h) / 2
    squares = np.stack([cx - half + 1, cy - half + 1, cx + half, cy + half], axis=1)
    return np.fix(squares)


def _tiles(shape: tuple[int, ...], tile: float, boxes: np.ndarray) -> list[tuple[int, int]]:
    """Top-left corners of the ``tile``-sided squares, on a grid overlapping by a quarter of a tile over the whole
    photo, that hold the centre of one of ``boxes`` at least an eighth of a tile from their edge."""
    h, w = shape[:2]
    side, step = int(tile), max(1, int(tile * 0.75))
    xs = sorted({*range(0, max(1, w - side), step), max(0, w - side)})
    ys = sorted({*range(0, max(1, h - side), step), max(0, h - side)})
    centres = (boxes[:, :2] + boxes[:, 2:4]) / 2
    margin = tile / 8
    out = []
    for y in ys:
        for x in xs:
            # a margin only where the tile ends inside the photo: there the next tile holds the face whole
            inside = (centres[:, 0] >= x + (margin if x else 0)) & (
                centres[:, 0] <= x + side - (margin if x + side < w else 0)
            )
            inside &= (centres[:, 1] >= y + (margin if y else 0)) & (
                centres[:, 1] <= y + side - (margin if y + side < h else 0)
            )
            if inside.any():
                out.append((x, y))
    return out


def _side(boxes: np.ndarray) -> np.ndarray:
    """Each box's longer side."""
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def _overlaps(boxes: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Which ``boxes`` share over half of the smaller one's area with one of ``faces``."""
    if not len(boxes) or not len(faces):
        return np.zeros(len(boxes), dtype=bool)
    a, b = boxes[:, None], faces[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return (w * h / np.maximum(np.minimum(area(a), area(b)), 1e-9) > 0.5).any(axis=1)
