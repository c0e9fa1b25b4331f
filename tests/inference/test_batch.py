"""Prediction over many files: input collection, per-file statuses that never raise, outputs, atomic writes."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

from agegender.data import images as images_module
from agegender.faces import create_detector
from agegender.inference import batch
from agegender.inference.batch import (
    FALLBACK_AGE,
    FileResult,
    Item,
    atomic_write_text,
    collect_inputs,
    competition_items,
    run_predictions,
    to_csv,
    to_json,
    to_submission,
    to_table,
)
from agegender.inference.predictor import FaceResult, Predictor
from agegender.models.folder import save_model_folder
from agegender.models.model import ModelConfig, build_model


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    folder = save_model_folder(
        build_model(ModelConfig(backbone="scratch_cnn", input_size=64)), tmp_path_factory.mktemp("batch") / "model"
    )
    return Predictor.load(folder, backend="torch", detector=create_detector("auto"))


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per kind of input a user folder holds, good and bad."""
    root = tmp_path_factory.mktemp("mixed")
    files = {
        "good": _save(root / "astronaut.png", astronaut()),  # lossless: exactly one face
        "missing": root / "missing.jpg",
        "text": root / "notes.jpg",
        "tiny": _save(root / "one_pixel.png", np.full((1, 1, 3), 90, dtype=np.uint8)),
        "huge": _save(root / "huge.png", np.full((600, 600, 3), 120, dtype=np.uint8)),
        "no_face": _save(root / "grey.png", np.full((240, 320, 3), 128, dtype=np.uint8)),
    }
    files["text"].write_text("this is a text file, not a JPEG\n")
    return files


# ------------------------------------------------------------------------------------------- inputs


def test_collect_inputs(tmp_path: Path) -> None:
    for rel in ("b.jpg", "a.PNG", "c.txt", "sub/d.jpeg", "sub/deeper/e.webp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")

    def names(items: list[Item]) -> list[str]:
        return [it.path.relative_to(tmp_path).as_posix() if it.path.is_absolute() else str(it.path) for it in items]

    # Folders: image extensions only (any case), sorted; sub-folders only when recursive.
    assert names(collect_inputs([str(tmp_path)])) == ["a.PNG", "b.jpg"]
    assert names(collect_inputs([str(tmp_path)], recursive=True)) == [
        "a.PNG",
        "b.jpg",
        "sub/d.jpeg",
        "sub/deeper/e.webp",
    ]
    # Files are kept as given (even without an image extension: the user asked for them).
    assert names(collect_inputs([str(tmp_path / "c.txt"), str(tmp_path / "b.jpg")])) == ["c.txt", "b.jpg"]
    # Globs, including recursive ones.
    assert names(collect_inputs([str(tmp_path / "*.jpg")])) == ["b.jpg"]
    assert names(collect_inputs([str(tmp_path / "**" / "*.jp*g")])) == ["b.jpg", "sub/d.jpeg"]
    # Missing paths stay, in place, to be reported as errors instead of vanishing.
    missing = str(tmp_path / "nope.jpg")
    items = collect_inputs([str(tmp_path / "b.jpg"), missing, str(tmp_path / "sub")])
    assert names(items) == ["b.jpg", "nope.jpg", "sub/d.jpeg"]
    assert all(it.id is None for it in items)
    # A pattern that matches nothing is kept too (a typo must not shrink the output silently).
    assert names(collect_inputs([str(tmp_path / "b.jpg"), str(tmp_path / "typo*.jpg")])) == ["b.jpg", "typo*.jpg"]


# -------------------------------------------------------------------------------------- predictions


def test_run_predictions_statuses(predictor: Predictor, mixed: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(images_module, "MAX_PIXELS", 300_000)  # refuses huge.png (360,000 px), not the others
    order = ["good", "missing", "text", "good", "tiny", "huge", "no_face"]
    items = [Item(mixed[k], f"id{i}") for i, k in enumerate(order)]
    results = list(run_predictions(predictor, items, chunk=3, progress=False))
    assert [r.path for r in results] == [str(mixed[k]) for k in order]
    assert [r.id for r in results] == [f"id{i}" for i in range(len(order))]
    assert [r.status for r in results] == ["ok", "error", "error", "ok", "no_face", "error", "no_face"]
    by_kind = dict(zip(order, results, strict=True))
    assert "file not found" in by_kind["missing"].message
    assert "not a readable image" in by_kind["text"].message
    assert "too large" in by_kind["huge"].message
    assert by_kind["no_face"].message == "no face found" and by_kind["no_face"].faces == []
    for r in (results[0], results[3]):
        assert len(r.faces) == 1 and r.faces[0].status == "ok" and r.faces[0].box is not None
    for r in results:
        json.dumps(r.to_dict(), allow_nan=False)
    # Every output format handles every status.
    parsed = list(csv.DictReader(io.StringIO(to_csv(results))))
    assert [row["file_status"] for row in parsed] == [r.status for r in results]
    assert [r["status"] for r in json.loads(to_json(results))] == [r.status for r in results]
    assert len(to_table(results).splitlines()) == len(results) + 1
    assert batch.summarize(results) == (
        "7 files: 2 with an estimate, 2 without a face, 0 with every face skipped, 3 unreadable; "
        "faces: 2 ok, 0 low quality, 0 skipped"
    )


@pytest.fixture(scope="module")
def tiny_face(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The astronaut shrunk so her face is ~30 px: below MIN_FACE_SIZE."""
    small = cv2.resize(astronaut(), None, fx=30 / 90, fy=30 / 90, interpolation=cv2.INTER_AREA)
    canvas = np.full((400, 400, 3), 200, dtype=np.uint8)
    canvas[100 : 100 + small.shape[0], 120 : 120 + small.shape[1]] = small
    return _save(tmp_path_factory.mktemp("tiny") / "tiny_face.png", canvas)


def test_low_quality_face_is_estimated_and_reported(predictor: Predictor, tiny_face: Path) -> None:
    results = list(run_predictions(predictor, [Item(tiny_face)], progress=False))
    assert [r.status for r in results] == ["ok"]
    face = results[0].faces[0]
    assert face.status == "low_quality" and face.reasons == ["small"] and face.age is not None
    row = next(csv.DictReader(io.StringIO(to_csv(results))))
    assert row["status"] == "low_quality" and row["reasons"] == "small" and float(row["quality"]) == face.quality
    assert json.loads(to_json(results))[0]["faces"][0]["reasons"] == ["small"]
    assert to_table(results).splitlines()[1].endswith("low quality: small")
    assert batch.summarize(results).endswith("faces: 0 ok, 1 low quality, 0 skipped")


def test_skipped_faces_stay_in_the_output(predictor: Predictor, tiny_face: Path, mixed: dict[str, Path]) -> None:
    strict = Predictor(predictor.engine, predictor.config, predictor.detector, min_face=40)
    results = list(run_predictions(strict, [Item(tiny_face), Item(mixed["good"])], progress=False))
    assert [r.status for r in results] == ["skipped", "ok"]
    face = results[0].faces[0]
    assert face.status == "skipped" and face.age is None and "min_face 40" in results[0].message
    rows = list(csv.DictReader(io.StringIO(to_csv(results))))
    assert rows[0]["status"] == "skipped" and rows[0]["age"] == "" and rows[0]["reasons"] == "small"
    assert "skipped: face is" in to_table(results).splitlines()[1]
    summary = batch.summarize(results)
    assert summary.endswith("1 with every face skipped, 0 unreadable; faces: 1 ok, 0 low quality, 1 skipped")
    # One row per file: a skipped face is not replaced by the whole image.
    single = list(run_predictions(strict, [Item(tiny_face)], single=True, progress=False))
    assert single[0].status == "skipped" and single[0].faces[0].box is not None and single[0].faces[0].age is None


def test_single_picks_the_main_face(predictor: Predictor, tmp_path: Path) -> None:
    """A slightly larger face in the corner (also the best detection) and one in the centre: one-row-per-file
    outputs report the central one (faces.select.main_face_index), not the widest or the first."""
    big = astronaut()[40:200, 160:290]  # face ~90 px
    mid = cv2.resize(big, None, fx=0.85, fy=0.85, interpolation=cv2.INTER_AREA)  # face ~75 px
    canvas = np.full((500, 800, 3), 200, dtype=np.uint8)
    h, w = mid.shape[:2]
    canvas[250 - h // 2 : 250 - h // 2 + h, 400 - w // 2 : 400 - w // 2 + w] = mid
    canvas[: big.shape[0], : big.shape[1]] = big
    path = _save(tmp_path / "two.png", canvas)
    every = list(run_predictions(predictor, [Item(path)], progress=False))[0].faces
    assert len(every) == 2 and every[0].box[0] < 100, [f.to_dict() for f in every]  # the corner face first
    chosen = list(run_predictions(predictor, [Item(path)], single=True, progress=False))[0]
    assert chosen.status == "ok" and len(chosen.faces) == 1
    assert 300 < chosen.faces[0].box[0] < 400  # the central face


def test_run_predictions_single(predictor: Predictor, mixed: dict[str, Path]) -> None:
    order = ["good", "no_face", "tiny", "missing"]
    results = list(run_predictions(predictor, [Item(mixed[k]) for k in order], single=True, progress=False))
    assert [r.status for r in results] == ["ok", "ok", "ok", "error"]
    for r in results[:3]:
        assert len(r.faces) == 1 and r.faces[0].age is not None
    assert results[0].faces[0].box is not None  # the detected face
    for r in results[1:3]:  # no face found: the whole image was used, and the output says so
        assert r.faces[0].box is None and "whole image" in r.faces[0].message


def test_run_predictions_no_detect(predictor: Predictor, mixed: dict[str, Path]) -> None:
    results = list(
        run_predictions(predictor, [Item(mixed["no_face"]), Item(mixed["text"])], detect=False, progress=False)
    )
    assert [r.status for r in results] == ["ok", "error"]
    assert len(results[0].faces) == 1 and results[0].faces[0].box is None


def test_run_predictions_empty(predictor: Predictor) -> None:
    assert list(run_predictions(predictor, [], progress=False)) == []


# -------------------------------------------------------------------------------------- submissions


def _face(age: float, gender: str) -> FaceResult:
    return FaceResult("ok", age=age, age_std=3.0, gender=gender, gender_probability=0.9)


def test_to_submission() -> None:
    results = [
        FileResult("a.jpg", "a", "ok", faces=[_face(34.567, "female")]),
        FileResult("m.jpg", "m", "error", "m.jpg: file not found"),
        FileResult("b.jpg", "b", "ok", faces=[_face(61.0, "male")]),
        FileResult("t.jpg", "t", "skipped", "too small", faces=[FaceResult("skipped", message="too small")]),
        FileResult("0.jpg", "007", "ok", faces=[_face(5.0, "female")]),
    ]
    rows = list(csv.reader(io.StringIO(to_submission(results))))
    assert rows[0] == ["id", "age", "gender"]
    assert [r[0] for r in rows[1:]] == ["a", "m", "b", "t", "007"]
    assert [float(r[1]) for r in rows[1:]] == [34.57, FALLBACK_AGE, 61.0, FALLBACK_AGE, 5.0]
    assert [r[2] for r in rows[1:]] == ["1", "0", "0", "0", "1"]


def test_competition_items_keep_ids_and_order(tmp_path: Path) -> None:
    ids = ["007", "3", "010", "42"]  # string ids, zero-padded ones included: they must survive as written
    for i in ids[:-1]:
        _save(tmp_path / "images" / f"{i}.jpg", np.full((20, 20, 3), 100, dtype=np.uint8))
    (tmp_path / "test.csv").write_text("id\n" + "\n".join(ids) + "\n")
    items = competition_items(tmp_path)
    assert [it.id for it in items] == ids
    assert [it.path.name for it in items[:-1]] == ["007.jpg", "3.jpg", "010.jpg"]
    assert not items[-1].path.exists()  # missing image: kept, becomes an error row


# ------------------------------------------------------------------------------------- atomic write


def test_atomic_write_text_writes(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out.csv"
    atomic_write_text(out, "a,b\n1,2\n")
    assert out.read_text() == "a,b\n1,2\n"
    assert os.listdir(out.parent) == ["out.csv"]
    # Permissions as for any file the user writes (umask), not the private 0600 of a temporary file.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_atomic_write_text_keeps_old_content_when_replace_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out = tmp_path / "out.json"
    out.write_text("previous\n")

    def broken_replace(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(out, "new content\n")
    assert out.read_text() == "previous\n"
    assert os.listdir(tmp_path) == ["out.json"]


def test_atomic_write_text_keeps_old_content_when_write_fails(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("previous\n")

    class NotText:
        pass

    with pytest.raises(TypeError):
        atomic_write_text(out, NotText())  # type: ignore[arg-type]
    assert out.read_text() == "previous\n"
    assert os.listdir(tmp_path) == ["out.json"]


def test_multi_frame_files_say_the_first_frame_was_used(predictor: Predictor, tmp_path: Path) -> None:
    frames = [Image.fromarray(astronaut()), *(Image.new("RGB", (512, 512), (g, g, g)) for g in (90, 180))]
    gif, tif = tmp_path / "anim.gif", tmp_path / "pages.tif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    frames[1].save(tif, save_all=True, append_images=[frames[0]])  # the face is on page 2: not looked at
    faces_gif, no_face_tif = run_predictions(predictor, [Item(gif), Item(tif)], progress=False)
    assert faces_gif.status == "ok" and faces_gif.message == "first of 3 frames used"
    assert no_face_tif.status == "no_face" and no_face_tif.message == "no face found; first of 2 frames used"
    rows = list(csv.DictReader(io.StringIO(to_csv([faces_gif, no_face_tif]))))
    assert [r["message"] for r in rows] == ["first of 3 frames used", "no face found; first of 2 frames used"]
    assert "first of 3 frames used" in predictor.predict(gif)[0].message  # the Python API says it too


def test_table_columns_stay_aligned_with_wide_characters_in_names() -> None:
    import unicodedata

    from agegender.inference.batch import FileResult, to_table

    rows = [
        FileResult(name, None, "no_face", "no face found") for name in ("plain.jpg", "写真の顔.jpg", "x" * 60 + ".jpg")
    ]
    lines = to_table(rows).splitlines()

    def columns(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    starts = {columns(line[: line.index("   -  ")]) for line in lines[1:]}  # where the face column begins
    assert starts == {41}  # 40 columns of name, one space
    assert lines[3].startswith("x" * 36 + ".jpg ")  # long names keep their end
