"""The Python prediction API on real photos: the astronaut (one adult woman) and the group photo t1.jpg (six faces).

The model is a tiny random ``scratch_cnn``: its estimates are meaningless, so these tests check the
pipeline (inputs, detection, statuses, intervals, serialisation), never accuracy.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

from agegender.data.images import ImageError
from agegender.face_filter import QualityFilter
from agegender.faces import MIN_FACE_SIZE, create_detector
from agegender.inference.calibration import central_z
from agegender.inference.predictor import FaceResult, Predictor, split_error
from agegender.models.folder import save_model_folder
from agegender.models.model import ModelConfig, build_model

#: The astronaut's face as (x1, y1, x2, y2), checked by eye; detections must land within BOX_TOL px of it.
ASTRONAUT_BOX = (178, 60, 268, 175)
BOX_TOL = 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model_folder(
        build_model(ModelConfig(backbone="scratch_cnn", input_size=64)), tmp_path_factory.mktemp("pred") / "model"
    )


@pytest.fixture(scope="module")
def detector():
    return create_detector("auto")


@pytest.fixture(scope="module")
def predictor(model_dir: Path, detector) -> Predictor:
    return Predictor.load(model_dir, backend="torch", detector=detector)


@pytest.fixture(scope="module")
def astro() -> np.ndarray:
    return astronaut()


def _check_ok(face: FaceResult, status: str = "ok") -> None:
    assert face.status == status, face.message
    assert (face.reasons == []) == (status == "ok")
    assert isinstance(face.age, float) and 0 <= face.age <= 100
    assert face.age_std is not None and face.age_std > 0
    assert face.age_low <= face.age <= face.age_high
    assert face.gender in {"male", "female"}
    assert 0.5 <= face.gender_probability <= 1.0
    p_female = face.p_female if face.gender == "female" else 1 - face.p_female
    assert p_female == pytest.approx(face.gender_probability, abs=1e-3)


def _check_astronaut(faces: list[FaceResult]) -> None:
    assert len(faces) == 1, [f.to_dict() for f in faces]
    face = faces[0]
    _check_ok(face)
    assert face.box is not None
    assert np.abs(np.array(face.box) - ASTRONAUT_BOX).max() < BOX_TOL, face.box
    assert face.score is not None and 0 < face.score <= 1


# ------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_load_backends(model_dir: Path, detector, astro: np.ndarray, backend: str) -> None:
    pred = Predictor.load(model_dir, backend=backend, detector=detector)
    assert pred.engine.name == backend
    _check_astronaut(pred.predict(astro))
    # The ONNX backend exports a temporary model.onnx and leaves the user's folder untouched.
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.json", "model.safetensors"]


def test_onnx_backend_leaves_no_temporary_export(
    model_dir: Path, detector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary model.onnx is only needed to start the ONNX Runtime session: it must not pile up."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pred = Predictor.load(model_dir, backend="onnx", detector=detector)
    assert list(tmp_path.iterdir()) == []
    assert len(pred.predict_batch([np.zeros((80, 80, 3), dtype=np.uint8)], detect=False)[0]) == 1


def test_load_unknown_backend(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="backend"):
        Predictor.load(model_dir, backend="tensorflow")


def test_load_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json"):
        Predictor.load(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------- inputs


def test_predict_accepts_path_bytes_pil_and_array(predictor: Predictor, astro: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "astronaut.png"
    Image.fromarray(astro).save(path)
    inputs = {"path": path, "str": str(path), "bytes": path.read_bytes(), "pil": Image.fromarray(astro), "array": astro}
    results = {name: predictor.predict(x) for name, x in inputs.items()}
    for faces in results.values():
        _check_astronaut(faces)
    # PNG is lossless: every way of passing the same pixels gives the same answer.
    assert len({json.dumps([f.to_dict() for f in faces]) for faces in results.values()}) == 1


def test_astronaut(predictor: Predictor, astro: np.ndarray) -> None:
    faces = predictor.predict(astro)
    _check_astronaut(faces)
    assert faces[0].landmarks is not None and len(faces[0].landmarks) == 5
    text = json.dumps([f.to_dict() for f in faces], allow_nan=False)
    assert json.loads(text)[0]["status"] == "ok"


def test_group_photo(predictor: Predictor, shared_dir: Path) -> None:
    path = shared_dir / "data" / "wild" / "t1.jpg"
    if not path.is_file():
        pytest.skip(f"shared photo missing: {path}")
    faces = predictor.predict(path)
    assert len(faces) == 6
    # Every face is estimated; the profile view is flagged as turned (see tests/faces/test_align.py).
    assert sorted(f.status for f in faces) == ["low_quality"] + ["ok"] * 5
    for face in faces:
        _check_ok(face, face.status)
        if face.status == "ok":
            assert face.quality == 1.0
        else:
            assert face.reasons == ["turned"] and face.quality < 1
    json.dumps([f.to_dict() for f in faces], allow_nan=False)


def test_predict_batch_keeps_order(predictor: Predictor, astro: np.ndarray) -> None:
    grey = np.full((300, 300, 3), 128, dtype=np.uint8)
    out = predictor.predict_batch([astro, grey, astro], batch_size=1)
    assert [len(faces) for faces in out] == [1, 0, 1]
    _check_astronaut(out[0])
    assert out[0][0].to_dict() == out[2][0].to_dict()


def test_predict_batch_reports_unreadable_inputs_and_keeps_the_others(predictor: Predictor, astro: np.ndarray) -> None:
    out = predictor.predict_batch([astro, b"", b"not an image", astro])
    assert len(out) == 4
    _check_astronaut(out[0])
    assert out[0][0].to_dict() == out[3][0].to_dict()
    for entry, why in ((out[1], "empty"), (out[2], "not a readable image")):
        assert len(entry) == 1 and entry[0].status == "error" and why in entry[0].message
        assert entry[0].age is None and entry[0].box is None
        assert split_error(entry) == ([], entry[0].message)
    assert split_error(out[0]) == (out[0], "")


def _truncated_pil(astro: np.ndarray, tmp_path: Path) -> Image.Image:
    path = tmp_path / "cut.jpg"
    Image.fromarray(astro).save(path, quality=90)
    path.write_bytes(path.read_bytes()[:4000])
    return Image.open(path)  # lazy: the header reads fine, the pixels fail on load


def test_truncated_pil_image(predictor: Predictor, astro: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="could not be decoded"):
        predictor.predict(_truncated_pil(astro, tmp_path))
    good, bad = predictor.predict_batch([astro, _truncated_pil(astro, tmp_path)])
    _check_astronaut(good)
    assert bad[0].status == "error" and "truncated" in bad[0].message


@pytest.mark.parametrize("wrong", [[np.zeros((8, 8, 3), np.uint8)], 5, None])
def test_wrong_types_raise_type_error_and_a_batch_goes_on(predictor: Predictor, astro: np.ndarray, wrong) -> None:
    with pytest.raises(TypeError, match="predict_batch" if isinstance(wrong, list) else "give a path, bytes"):
        predictor.predict(wrong)
    good, bad, again = predictor.predict_batch(x for x in (astro, wrong, astro))  # a generator is fine too
    _check_astronaut(good)
    _check_astronaut(again)
    assert bad[0].status == "error" and "cannot read an image from" in bad[0].message
    with pytest.raises(TypeError, match="use predict"):
        predictor.predict_batch(b"abc")


def test_file_objects_and_memoryviews_are_read(predictor: Predictor, astro: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(astro).save(buf, format="PNG")
    _check_astronaut(predictor.predict(memoryview(buf.getvalue())))
    buf.seek(0)
    _check_astronaut(predictor.predict(buf))
    with pytest.raises(ImageError, match="binary mode"):
        predictor.predict(io.StringIO("text"))


def test_no_detect_uses_whole_image(predictor: Predictor, astro: np.ndarray) -> None:
    x1, y1, x2, y2 = ASTRONAUT_BOX
    faces = predictor.predict(astro[y1 - 20 : y2 + 20, x1 - 30 : x2 + 30], detect=False)
    assert len(faces) == 1
    _check_ok(faces[0])
    assert faces[0].box is None and faces[0].landmarks is None
    assert faces[0].reasons == [] and faces[0].quality is None  # nothing was measured, nothing is flagged


def _tiny_astronaut(astro: np.ndarray) -> np.ndarray:
    """The photo shrunk so the face is ~30 px wide: found by the detector, but below MIN_FACE_SIZE."""
    scale = 30 / (ASTRONAUT_BOX[2] - ASTRONAUT_BOX[0])
    small = cv2.resize(astro, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((400, 400, 3), 200, dtype=np.uint8)
    canvas[100 : 100 + small.shape[0], 120 : 120 + small.shape[1]] = small
    return canvas


def test_tiny_face_is_estimated_and_flagged_small(predictor: Predictor, astro: np.ndarray) -> None:
    faces = predictor.predict(_tiny_astronaut(astro))
    assert len(faces) == 1, [f.to_dict() for f in faces]
    face = faces[0]
    assert face.status == "low_quality" and "small" in face.reasons
    assert face.age is not None and face.gender in {"male", "female"} and face.age_low <= face.age <= face.age_high
    assert 0 < face.quality < 1 and "small face" in face.message
    assert face.box is not None and (face.box[2] - face.box[0]) < MIN_FACE_SIZE
    assert face.label.endswith("?")
    json.dumps(face.to_dict(), allow_nan=False)


def test_min_face_skips_the_tiny_face(model_dir: Path, detector, astro: np.ndarray) -> None:
    strict = Predictor.load(model_dir, backend="torch", detector=detector, min_face=40)
    faces = strict.predict(_tiny_astronaut(astro))
    assert len(faces) == 1
    face = faces[0]
    assert face.status == "skipped" and "small" in face.reasons and "min_face 40" in face.message
    assert face.age is None and face.gender is None and face.age_low is None and face.box is not None
    assert face.label == "skipped"
    json.dumps(face.to_dict(), allow_nan=False)
    _check_astronaut(strict.predict(astro))  # a big face passes
    # A per-call filter overrides the predictor's.
    assert strict.predict(_tiny_astronaut(astro), quality_filter=QualityFilter())[0].status == "low_quality"
    with pytest.raises(ValueError, match="min_quality"):
        Predictor.load(model_dir, backend="torch", min_quality=2)


def test_blurred_face_gets_the_calibrated_wider_interval(model_dir: Path, detector, tmp_path: Path) -> None:
    blurred = cv2.GaussianBlur(astronaut(), (0, 0), 3)
    plain = Predictor.load(model_dir, backend="torch", detector=detector).predict(blurred)
    config = json.loads((model_dir / "config.json").read_text())
    config["calibration"] = {"interval_scale": {"ok": 1.0, "blurry": 2.0}, "level": 0.8, "fitted_on": "test"}
    calibrated = tmp_path / "calibrated"
    calibrated.mkdir()
    for f in model_dir.iterdir():
        (calibrated / f.name).write_bytes(f.read_bytes())
    (calibrated / "config.json").write_text(json.dumps(config))
    wide = Predictor.load(calibrated, backend="torch", detector=detector).predict(blurred)
    assert len(plain) == len(wide) == 1
    a, b = plain[0], wide[0]
    assert a.status == b.status == "low_quality" and "blurry" in a.reasons
    assert a.interval_scale == 1.0 and b.interval_scale == 2.0
    # Both spreads are rounded to 0.01, so twice one differs from the other by up to 0.015.
    assert b.age == a.age and b.age_std == pytest.approx(2 * a.age_std, abs=0.02)
    assert b.age_high - b.age == pytest.approx(2 * (a.age_high - a.age), abs=0.02)
    assert b.age_high - b.age == pytest.approx(central_z(0.8) * b.age_std, abs=0.02)


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"this is not an image", "not a readable image"),
        (b"", "empty"),
        (np.zeros((4, 4, 7), dtype=np.uint8), "shape"),
        ("/definitely/not/here.jpg", "file not found"),
    ],
    ids=["text-bytes", "empty-bytes", "bad-array", "missing-file"],
)
def test_non_image_raises_image_error(predictor: Predictor, bad, message: str) -> None:
    with pytest.raises(ImageError, match=message) as info:
        predictor.predict(bad)
    assert isinstance(info.value, ValueError)


def test_text_file_with_image_extension(predictor: Predictor, tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("hello")
    with pytest.raises(ImageError, match=r"notes\.jpg: not a readable image"):
        predictor.predict(fake)


# ------------------------------------------------------------------------------------------ results


def test_regression_head_results_are_json(tmp_path: Path, detector, astro: np.ndarray) -> None:
    """A regression head has no spread: age_std and the interval are None (never NaN, which is not JSON)."""
    net = build_model(ModelConfig(backbone="scratch_cnn", input_size=64, age_head="regression"))
    pred = Predictor.load(save_model_folder(net, tmp_path / "reg"), backend="torch", detector=detector)
    faces = pred.predict(astro)
    assert len(faces) == 1 and faces[0].status == "ok"
    face = faces[0]
    assert isinstance(face.age, float)
    assert face.age_std is None and face.age_low is None and face.age_high is None
    json.dumps(face.to_dict(), allow_nan=False)
    assert face.label == f"{'F' if face.gender == 'female' else 'M'}, {round(face.age)}"


def test_label_format() -> None:
    # the estimate with its 80% interval, as tables show it: not the standard deviation
    assert FaceResult("ok", age=34.2, age_low=29.6, age_high=38.8, gender="female").label == "F, 34 (30–39)"
    assert FaceResult("ok", age=61.7, age_low=51.2, age_high=72.2, gender="male").label == "M, 62 (51–72)"
    assert FaceResult("ok", age=20.0, gender="male").label == "M, 20"
    low = FaceResult("low_quality", age=20.0, age_low=12.0, age_high=28.0, gender="male", reasons=["small"])
    assert low.label == "M, 20 (12–28)?"
    assert FaceResult("skipped", message="skipped: face is 20 px", reasons=["small"]).label == "skipped"


def test_tta_averages_with_the_mirror(model_dir: Path, predictor: Predictor, astro: np.ndarray) -> None:
    x1, y1, x2, y2 = ASTRONAUT_BOX
    crop = astro[y1 - 20 : y2 + 20, x1 - 30 : x2 + 30]
    mirror = np.ascontiguousarray(crop[:, ::-1])
    plain, flipped = (predictor.predict(c, detect=False)[0] for c in (crop, mirror))
    tta = Predictor.load(model_dir, backend="torch", tta=True).predict(crop, detect=False)[0]
    _check_ok(tta)
    assert tta.age == pytest.approx((plain.age + flipped.age) / 2, abs=0.02)


class _RecordingDetector:
    """Finds nothing; records the threads it ran on and, when ``thread_safe``, waits until two calls overlap."""

    name = "recording"

    def __init__(self, thread_safe: bool) -> None:
        import threading

        self.thread_safe = thread_safe
        self.threads: set[int] = set()
        self._overlap = threading.Barrier(2, timeout=10) if thread_safe else None

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list:
        import threading

        self.threads.add(threading.get_ident())
        if self._overlap is not None and len(self.threads) <= 2:
            self._overlap.wait()  # raises BrokenBarrierError unless a second photo is being detected meanwhile
        return []


@pytest.mark.parametrize("thread_safe", [True, False])
def test_predict_batch_detects_photos_at_once_only_with_thread_safe_detectors(
    model_dir: Path, astro: np.ndarray, thread_safe: bool
) -> None:
    import threading

    rec = _RecordingDetector(thread_safe)
    pred = Predictor.load(model_dir, backend="torch", detector=rec, workers=2)
    out = pred.predict_batch([astro, astro, astro, astro])
    assert out == [[], [], [], []]
    if thread_safe:
        assert len(rec.threads) == 2 and threading.get_ident() not in rec.threads
    else:
        assert rec.threads == {threading.get_ident()}


def test_parallel_and_sequential_batches_give_the_same_results(model_dir: Path, detector, astro: np.ndarray) -> None:
    assert detector.thread_safe, "the default detector is expected to detect photos in parallel"
    small = cv2.resize(astro, (128, 128), interpolation=cv2.INTER_AREA)
    turned = np.ascontiguousarray(np.rot90(astro))
    grey = np.full((200, 300, 3), 128, dtype=np.uint8)
    images = [astro, b"", small, grey, turned, astro]
    one = Predictor.load(model_dir, backend="torch", detector=detector, workers=1).predict_batch(images)
    two = Predictor.load(model_dir, backend="torch", detector=detector, workers=2).predict_batch(images)
    assert [[f.to_dict() for f in faces] for faces in one] == [[f.to_dict() for f in faces] for faces in two]
    assert [len(f) for f in two] == [1, 1, 1, 0, 1, 1] and two[1][0].status == "error"


def test_workers_must_be_positive(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="workers"):
        Predictor.load(model_dir, backend="torch", workers=0)
