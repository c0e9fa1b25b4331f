"""BlazeFace boxes + MTCNN O-net landmarks: the astronaut, the group photo t1.jpg, the fallback to MTCNN."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from agegender.errors import ConfigError, DetectorModelError
from agegender.faces.detectors import BlazeFaceDetector, MTCNNDetector, available_detectors, create_detector
from agegender.faces.detectors import blazeface as blaze_module
from agegender.faces.detectors.onnx_net import OnnxNet

# Box centres (x, y) of the six faces in t1.jpg (as in test_detectors.py).
T1_FACES = [(960, 131), (111, 328), (321, 208), (517, 337), (791, 408), (1180, 337)]


@pytest.fixture(scope="module", params=["full", "short"])
def blaze(request: pytest.FixtureRequest) -> BlazeFaceDetector:
    return create_detector("blazeface", model=request.param)


def _centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def test_registered() -> None:
    assert "blazeface" in available_detectors()


def test_unknown_model_is_a_user_error() -> None:
    with pytest.raises(DetectorModelError, match="full"):
        BlazeFaceDetector(model="tiny")


@pytest.mark.parametrize(("model", "count"), [("full", 2304), ("short", 896)])
def test_anchors_match_the_model_outputs(model: str, count: int) -> None:
    spec = blaze_module.BLAZEFACE_MODELS[model]
    anchors = blaze_module._anchors(spec.side, spec.strides, spec.per_cell)
    assert anchors.shape == (count, 2)
    assert anchors.min() > 0 and anchors.max() < 1
    net = OnnxNet(blaze_module.MODEL_DIR / spec.file, list(spec.outputs))
    scores, boxes = net(np.zeros((1, 3, spec.side, spec.side), np.float32))
    assert (scores.size, boxes.size) == (count, count * 16)  # one score, then box + 6 keypoints, per anchor


def test_weighted_nms_merges_overlaps_and_keeps_apart() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], dtype=np.float32)
    kept, scores = blaze_module._weighted_nms(boxes, np.array([0.9, 0.3, 0.8]))
    assert scores.tolist() == pytest.approx([0.9, 0.8])
    assert kept[0].tolist() == pytest.approx([0.5, 0, 10.5, 10])  # (0.9 * 0 + 0.3 * 2) / 1.2
    assert kept[1].tolist() == pytest.approx([50, 50, 60, 60])


def test_blazeface_boxes_find_the_astronaut(blaze: BlazeFaceDetector, astro: np.ndarray) -> None:
    boxes, scores = blaze.boxes(astro)
    assert len(boxes) == 1 and scores[0] > 0.8
    cx, cy = _centre(boxes[0])
    assert 200 < cx < 250 and 95 < cy < 150, boxes[0]


def test_landmarks_follow_mtcnn(blaze: BlazeFaceDetector, mtcnn: MTCNNDetector, astro: np.ndarray) -> None:
    """O-net on BlazeFace's box places the five landmarks where the whole MTCNN cascade does."""
    ours, theirs = blaze.detect(astro), mtcnn.detect(astro)
    assert len(ours) == 1 and ours[0].landmarks is not None
    gap = np.linalg.norm(ours[0].landmarks - theirs[0].landmarks, axis=1)
    assert gap.max() < 0.05 * theirs[0].size, gap


def test_group_photo(shared_asset) -> None:
    bgr = cv2.imread(str(shared_asset("data/wild/t1.jpg")))
    found = create_detector("blazeface", fallback=False).detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert len(found) == 6
    assert all(any(np.hypot(*(_centre(d.box) - c)) < 35 for d in found) for c in T1_FACES)


def test_falls_back_to_mtcnn_when_nothing_survives(
    blaze: BlazeFaceDetector, mtcnn: MTCNNDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blaze, "_anchor_boxes", lambda image, threshold: (np.empty((0, 4)), np.empty(0)))
    assert [d.box for d in blaze.detect(astro)] == [d.box for d in mtcnn.detect(astro)]
    monkeypatch.setattr(blaze, "fallback", False)
    assert blaze.detect(astro) == []


def test_onet_rejects_a_box_without_a_face(
    blaze: BlazeFaceDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    wall = np.array([[380.0, 300.0, 480.0, 400.0]])  # the astronaut's suit, no face
    monkeypatch.setattr(blaze, "_anchor_boxes", lambda image, threshold: (wall, np.array([0.9])))
    monkeypatch.setattr(blaze, "fallback", False)
    assert blaze.detect(astro) == []


FACE = np.array([190.0, 80.0, 265.0, 170.0])  # the astronaut's face, about where BlazeFace puts it
WALL = np.array([380.0, 300.0, 480.0, 400.0])  # her suit, no face


def test_rnet_vets_squares(mtcnn: MTCNNDetector, astro: np.ndarray) -> None:
    squares = blaze_module._onet_squares(np.stack([FACE, WALL]), blaze_module.ONET_FRAMES["full"])
    assert mtcnn.vet(astro, squares).tolist() == [True, False]
    assert mtcnn.vet(astro, squares[:0]).shape == (0,)


def _only_boxes(blaze: BlazeFaceDetector, monkeypatch: pytest.MonkeyPatch, boxes: np.ndarray, score: float) -> None:
    """BlazeFace sees only ``boxes``, all with ``score``; no MTCNN fallback."""
    monkeypatch.setattr(blaze, "fallback", False)
    monkeypatch.setattr(
        blaze,
        "_anchor_boxes",
        lambda image, threshold: (
            (boxes, np.full(len(boxes), score)) if score > threshold else (np.empty((0, 4)), np.empty(0))
        ),
    )


def test_a_weak_box_on_a_face_is_vetted_and_kept(
    blaze: BlazeFaceDetector, mtcnn: MTCNNDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_boxes(blaze, monkeypatch, FACE[None], 0.3)
    found = blaze.detect(astro)
    assert len(found) == 1
    assert iou_of(found[0].box, mtcnn.detect(astro)[0].box) > 0.7
    monkeypatch.setattr(blaze, "weak_threshold", 0.5)  # weak boxes off: only sure ones reach O-net
    monkeypatch.setattr(blaze, "local_search", 1.0)  # and no search around them
    assert blaze.detect(astro) == []


def test_a_weak_box_without_a_face_never_reaches_onet(
    blaze: BlazeFaceDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_boxes(blaze, monkeypatch, WALL[None], 0.3)
    seen: list[np.ndarray] = []
    landmarks = blaze._mtcnn.landmarks
    monkeypatch.setattr(
        blaze._mtcnn, "landmarks", lambda image, squares: seen.append(squares) or landmarks(image, squares)
    )
    assert blaze.detect(astro) == []
    assert seen == []  # R-net turned it away


def test_weak_frames_frame_each_vetted_box_once_per_scale(
    blaze: BlazeFaceDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    square = blaze_module._onet_squares(FACE[None], blaze_module.ONET_FRAMES["full"])
    monkeypatch.setattr(blaze, "weak_frames", (1.0, 0.5))
    framed = blaze._vetted(astro, square)
    sides = framed[:, 2] - framed[:, 0]
    assert framed.shape == (2, 4) and sides[1] == pytest.approx(sides[0] / 2, abs=1)
    assert np.allclose((framed[:, :2] + framed[:, 2:]) / 2, (square[0, :2] + square[0, 2:]) / 2, atol=1)


def test_weak_frames_must_be_numbers() -> None:
    with pytest.raises(ConfigError, match="weak_frames"):
        BlazeFaceDetector(weak_frames="wide")
    assert BlazeFaceDetector(weak_frames=0.9).weak_frames == (0.9,)


def iou_of(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def test_mtcnn_min_face_ratio_starts_the_pyramid_smaller(astro: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """A floor of 10% of the shorter side (51 px on the 512 px astronaut) drops the pyramid's largest scales
    (P-net's costliest) and still finds the ~90 px face."""
    used: list[float] = []
    original = MTCNNDetector._pnet_scale

    def record(self: MTCNNDetector, image: np.ndarray, scale: float) -> np.ndarray:
        used.append(scale)
        return original(self, image, scale)

    monkeypatch.setattr(MTCNNDetector, "_pnet_scale", record)
    assert len(MTCNNDetector(second_pass=False).detect(astro)) == 1
    plain, used[:] = list(used), []
    assert len(MTCNNDetector(min_face_ratio=0.1, second_pass=False).detect(astro)) == 1
    assert max(used) == pytest.approx(12 / 51.2) and max(plain) == pytest.approx(12 / 20)
    assert len(used) < len(plain)


def test_a_reduced_decode_keeps_the_minimum_face_in_photo_pixels(blaze: BlazeFaceDetector) -> None:
    """``scale`` (photo pixels per image pixel, a photo decoded at reduced size) is accepted as by MTCNN: a 40 px
    face in an image decoded at a quarter is 160 px in the photo, so min_face_size=100 keeps it only with scale."""
    from skimage.data import astronaut

    quarter = cv2.resize(astronaut(), (128, 128), interpolation=cv2.INTER_AREA)  # the face: ~25 px
    picky = create_detector("blazeface", model=blaze.model, min_face_size=50, small_photo_share=0)
    assert picky.detect(quarter) == []
    (face,) = picky.detect(quarter, 4.0)
    assert 15 <= face.size <= 40  # boxes stay in image pixels


def test_threads_detect_at_once_with_the_same_answers(blaze: BlazeFaceDetector) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from skimage.data import astronaut

    images = [astronaut(), np.ascontiguousarray(astronaut()[:, ::-1]), cv2.resize(astronaut(), (256, 256))] * 2
    alone = [[(d.box, d.score) for d in blaze.detect(im)] for im in images]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda im: [(d.box, d.score) for d in blaze.detect(im)], images))
    assert blaze.thread_safe and together == alone and all(len(f) == 1 for f in alone)


def _class_photo(astro: np.ndarray, rows: int, cols: int, width: int) -> np.ndarray:
    """A made-up class photo: ``rows`` x ``cols`` copies of the astronaut, each a square cell of the picture."""
    cell = width // cols
    portrait = cv2.resize(astro, (cell, cell), interpolation=cv2.INTER_AREA)
    return np.tile(portrait, (rows, cols, 1))


def test_closer_looks_find_a_class_photos_small_faces(astro: np.ndarray) -> None:
    picture = _class_photo(astro, 6, 9, 1278)  # faces ~50 px: ~4% of the picture, ~7 px at BlazeFace's input
    one_look = create_detector("blazeface", zoom_levels=0, fallback=False).detect(picture)
    zoomed = create_detector("blazeface", fallback=False).detect(picture)
    assert len(one_look) < 40  # one look at 192 px loses most of them
    assert len(zoomed) >= 50, len(zoomed)
    cell = 1278 // 9
    cells = {(int(_centre(d.box)[1] // cell), int(_centre(d.box)[0] // cell)) for d in zoomed}
    assert len(cells) == len(zoomed)  # one face per cell: no face found twice across tiles


def test_closer_looks_leave_a_portrait_alone(astro: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    zoomed = create_detector("blazeface", fallback=False)
    looks = []
    look = zoomed._anchor_boxes
    monkeypatch.setattr(
        zoomed, "_anchor_boxes", lambda image, threshold: looks.append(image.shape) or look(image, threshold)
    )
    found = zoomed.detect(astro)
    plain = create_detector("blazeface", zoom_levels=0, fallback=False).detect(astro)
    assert len(looks) == 1  # a face seen well: no tiles
    assert [d.box for d in found] == [d.box for d in plain]


def test_tiles_hold_the_small_boxes_and_reach_the_photos_edges() -> None:
    boxes = np.array([[10, 10, 30, 30], [960, 620, 990, 640]], dtype=float)  # a corner face, and one near the other
    tiles = blaze_module._tiles((640, 1000), 250.0, boxes)
    assert (0, 0) in tiles and (750, 390) in tiles  # the photo's last row and column end at its edges
    for x, y in tiles:
        assert 0 <= x <= 750 and 0 <= y <= 390
    assert len(tiles) == 2  # only tiles holding a box's centre are looked at
    assert blaze_module._tiles((640, 1000), 250.0, np.empty((0, 4))) == []


def test_only_boxes_over_zoom_threshold_open_tiles(astro: np.ndarray) -> None:
    picture = _class_photo(astro, 6, 9, 1278)
    assert create_detector("blazeface", zoom_threshold=1.0, fallback=False).detect(picture) == []  # nothing zooms
    assert len(create_detector("blazeface", zoom_threshold=0.1, fallback=False).detect(picture)) >= 50


LOW = FACE + np.array([0, 0.4, 0, 0.4]) * (FACE[3] - FACE[1])  # a box sitting on her chin: O-net turns it down


@pytest.fixture
def full() -> BlazeFaceDetector:
    """The default (full-range) model: the framings below are chosen for its O-net squares."""
    return create_detector("blazeface")


def test_local_search_finds_a_face_onet_turns_down(
    full: BlazeFaceDetector, mtcnn: MTCNNDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_boxes(full, monkeypatch, LOW[None], 0.9)
    monkeypatch.setattr(full, "local_search", 1.0)
    assert full.detect(astro) == []  # O-net alone, on the badly framed box
    monkeypatch.setattr(full, "local_search", 0.05)
    found, theirs = full.detect(astro), mtcnn.detect(astro)[0]
    assert len(found) == 1 and iou_of(found[0].box, theirs.box) > 0.8
    gap = np.linalg.norm(found[0].landmarks - theirs.landmarks, axis=1)
    assert gap.max() < 0.05 * theirs.size, gap


def test_local_search_reaches_boxes_under_weak_threshold(
    full: BlazeFaceDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    _only_boxes(full, monkeypatch, LOW[None], 0.07)  # under weak_threshold (0.1), over local_search (0.05)
    assert len(full.detect(astro)) == 1
    monkeypatch.setattr(full, "local_search", 0.08)
    assert full.detect(astro) == []


def test_local_search_maps_each_face_back_to_its_place(
    full: BlazeFaceDetector, mtcnn: MTCNNDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two neighbourhoods share one mosaic; each face comes back where MTCNN finds it on the photo."""
    pair = np.ascontiguousarray(np.hstack([astro, astro[:, ::-1]]))
    mirrored = np.array([1024 - LOW[2], LOW[1], 1024 - LOW[0], LOW[3]])
    _only_boxes(full, monkeypatch, np.stack([LOW, mirrored]), 0.9)
    found = sorted(full.detect(pair), key=lambda d: d.box[0])
    theirs = sorted(mtcnn.detect(pair), key=lambda d: d.box[0])
    assert len(found) == 2 and len(theirs) == 2
    for ours, ref in zip(found, theirs, strict=True):
        assert iou_of(ours.box, ref.box) > 0.8
        assert np.linalg.norm(ours.landmarks - ref.landmarks, axis=1).max() < 0.05 * ref.size


def _searched_mosaics(blaze: BlazeFaceDetector, monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """The images MTCNN's cascade will be run on (the local search's mosaics), recorded as they come."""
    searched: list[np.ndarray] = []
    cascade = blaze._mtcnn.cascade
    monkeypatch.setattr(blaze._mtcnn, "cascade", lambda image, m: searched.append(image) or cascade(image, m))
    return searched


def test_local_search_skips_covered_boxes_and_those_rnet_rejects(
    full: BlazeFaceDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched = _searched_mosaics(full, monkeypatch)
    _only_boxes(full, monkeypatch, np.stack([FACE, FACE + 4, WALL]), 0.9)  # a face, its second box, her suit
    assert len(full.detect(astro)) == 1
    assert searched == []  # the second box is covered by the face found; R-net turns the suit away
    monkeypatch.setattr(full, "local_rnet", 0.0)
    assert len(full.detect(astro)) == 1  # the suit searched, nothing found there
    assert len(searched) == 1


def test_local_search_cuts_out_at_most_max_weak_neighbourhoods(
    full: BlazeFaceDetector, astro: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched = _searched_mosaics(full, monkeypatch)
    grid = np.array([[x, y, x + 40, y + 40] for x in range(60, 420, 60) for y in (300, 380, 440)], float)
    _only_boxes(full, monkeypatch, grid, 0.9)
    monkeypatch.setattr(full, "local_rnet", 0.0)
    monkeypatch.setattr(full, "max_weak", 3)
    full.detect(astro)
    (mosaic,) = searched
    cut = 24 / 20 * 3 * 40  # each 40 px box's neighbourhood, its smallest face (20 px) scaled to 24 px
    assert mosaic.shape[1] == pytest.approx(3 * cut + 2 * blaze_module.LOCAL_GAP, abs=6)
