"""``data align``: chips equal to what prediction feeds the network, a manifest with labels, resumable, reported."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agegender.cli.main import main
from agegender.data.images import digest_bytes, load_image
from agegender.data.readers import read_dataset
from agegender.faces.chips import LOG_FILE, align_dataset
from agegender.inference.predictor import Predictor

ASTRONAUT = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """A labelled manifest: the shipped astronaut photo, a photo without a face, an unreadable file."""
    root = tmp_path / "photos"
    (root / "images").mkdir(parents=True)
    shutil.copy(ASTRONAUT, root / "images" / "astro.jpg")
    flat = np.full((120, 160, 3), 128, np.uint8)
    import cv2

    cv2.imwrite(str(root / "images" / "wall.jpg"), flat)
    (root / "images" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "labels.csv").write_text(
        "path,age,gender\nimages/astro.jpg,35,1\nimages/wall.jpg,20,0\nimages/broken.jpg,40,1\n"
    )
    return root


class RecordingEngine:
    """Wraps an engine and keeps the crops prediction hands to the network."""

    def __init__(self, engine) -> None:
        self.engine, self.crops = engine, []

    def pre(self, crops):
        self.crops += [np.array(c) for c in crops]
        return self.engine.pre(crops)

    def run(self, batch):
        return self.engine.run(batch)


def test_align_writes_chips_manifest_and_report(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "aligned"
    report = align_dataset(photos, out, workers=1, progress=False)
    assert report["photos"] == 2  # the broken file is excluded by the reader, with its reason
    assert report["read_report"]["problems"]["undecodable_image"]["count"] == 1
    assert report["chips_written"] == 1
    assert report["failed"]["no_face"]["count"] == 1 and "wall.jpg" in report["failed"]["no_face"]["examples"][0]
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert len(rows) == 1
    row = rows[0]
    assert (row["age"], row["gender"]) == ("35.0", "1")
    assert row["source_digest"] == digest_bytes((photos / "images" / "astro.jpg").read_bytes())
    chip = load_image(out / row["path"])
    assert chip.shape == (200, 200, 3)
    # The aligned folder is a dataset like any other, and its records keep the photo's hash for splits.
    reading = read_dataset(out)
    assert reading.report.format == "manifest"
    assert [r.digest for r in reading.records] == [row["source_digest"]]
    assert json.loads((out / "align_report.json").read_text())["chips_written"] == 1


def test_chip_is_exactly_the_crop_prediction_feeds_the_network(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "aligned"
    align_dataset(photos, out, workers=1, progress=False)
    (row,) = csv.DictReader((out / "labels.csv").open())
    chip = load_image(out / row["path"])
    predictor = Predictor.load(backend="torch")
    predictor.engine = RecordingEngine(predictor.engine)
    faces = predictor.predict(photos / "images" / "astro.jpg")
    assert len(faces) == 1 and len(predictor.engine.crops) == 1
    fed = predictor.engine.crops[0]
    assert fed.shape == chip.shape
    assert np.array_equal(fed, chip)


def test_rerun_skips_done_photos_and_resumes_after_a_kill(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "aligned"
    align_dataset(photos, out, workers=1, progress=False)
    log_lines = (out / LOG_FILE).read_text().splitlines()
    assert len(log_lines) == 2
    (row,) = csv.DictReader((out / "labels.csv").open())
    (out / row["path"]).unlink()
    (out / LOG_FILE).write_text(log_lines[1] + "\n" + '{"key": "cut sho')  # astro's entry lost, a torn line
    report = align_dataset(photos, out, workers=1, progress=False)
    assert report["chips_written"] == 1 and (out / row["path"]).is_file()
    again = align_dataset(photos, out, workers=1, progress=False)  # nothing left to do
    assert again == report


def test_cli_align_prints_the_report(photos: Path, tmp_path: Path, capsys) -> None:
    assert main(["data", "align", str(photos / "labels.csv"), "--output", str(tmp_path / "a"), "-q"]) == 0
    text = capsys.readouterr().out
    assert "chips written: 1" in text and "no_face" in text


def test_cli_align_takes_detector_options_and_refuses_bad_ones(photos: Path, tmp_path: Path, capsys) -> None:
    args = ["data", "align", str(photos / "labels.csv"), "-q", "--workers", "2"]
    assert main([*args, "--output", str(tmp_path / "a"), "--detector", "mtcnn:landmark_vote=False"]) == 0
    assert "chips written: 1" in capsys.readouterr().out
    assert main([*args, "--output", str(tmp_path / "b"), "--detector", "mtcnn:no_such=1"]) == 2
    assert "has no option no_such" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # refused before anything was written


def test_align_several_processes_on_wild_photos(shared_asset, tmp_path: Path) -> None:
    wild = shared_asset("data/wild")
    names = ["woman1.jpg", "man1.jpg", "kid1.jpg", "t1.jpg"]
    src = tmp_path / "wild"
    src.mkdir()
    for n in names:
        shutil.copy(wild / n, src / n)
    (src / "labels.csv").write_text("path,age,gender\n" + "".join(f"{n},30,{i % 2}\n" for i, n in enumerate(names)))
    report = align_dataset(src, tmp_path / "out", workers=2, progress=False)
    assert report["photos"] == 4 and report["chips_written"] == 4
    assert report["several_faces"] >= 1  # the group photo: its main face is kept
