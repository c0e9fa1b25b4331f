"""benchmarks/crowd_recall.py: photos tiled into group pictures, each detector's faces matched to the reference's."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
crowd_recall = pytest.importorskip("crowd_recall")


def test_montage_puts_each_photo_in_its_cell_in_order() -> None:
    photos = [np.full((40, 60, 3), v, np.uint8) for v in (10, 20, 30, 40, 50, 60, 70)]
    picture = crowd_recall.montage(photos, 2, 3, 301)  # cells of 100 px; the 7th photo is not needed
    assert picture.shape == (200, 300, 3)
    assert [int(picture[r * 100 + 50, c * 100 + 50, 0]) for r in range(2) for c in range(3)] == [10, 20, 30, 40, 50, 60]


def test_main_counts_found_and_matched_faces_per_picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        cv2.imwrite(str(photos / f"{i}.jpg"), np.full((50, 50, 3), 100, np.uint8))
    monkeypatch.setattr(crowd_recall, "GRIDS", ((1, 2, 100), (2, 2, 100)))
    monkeypatch.setattr(
        crowd_recall,
        "labelled_records",
        lambda data, split_file, split: [type("R", (), {"path": p})() for p in sorted(photos.iterdir())],
    )
    boxes = {  # per picture: the reference finds two faces, "x" one of them and a false one
        "ref": [np.array([[0, 0, 40, 40], [50, 0, 90, 40.0]])] * 2,
        "x": [np.array([[2, 2, 40, 40], [0, 60, 20, 80.0]])] * 2,
    }
    monkeypatch.setattr(crowd_recall, "run", lambda spec, pictures, repeats: (boxes[spec], [5.0] * len(pictures)))
    out = tmp_path / "crowd.json"
    args = ["--data", str(photos), "--reference", "ref", "--detector", "x", "--output", str(out)]
    assert crowd_recall.main(args) == 0
    text = out.with_suffix(".md").read_text()
    assert "| x | 2 (1) / 5 | 2 (1) / 5 | 4 / 2 |" in text
    assert "| ref | 2 (2) / 5 | 2 (2) / 5 | 4 / 4 |" in text


def test_too_few_photos_for_the_largest_grid_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crowd_recall, "labelled_records", lambda data, split_file, split: [])
    with pytest.raises(SystemExit):
        crowd_recall.main(["--data", str(tmp_path), "--detector", "x", "--output", str(tmp_path / "c.json")])


def test_portrait_is_a_square_around_the_face_padded_where_it_leaves_the_photo() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    image[40:60, 40:60] = 200  # the "face"
    cut = crowd_recall.portrait(image, np.array([40, 40, 60, 60.0]))
    assert cut.shape == (44, 44, 3)  # 2.2 x 20 px
    assert cut[22, 22, 0] == 200 and cut[0, 0, 0] == 0  # the face in the middle
    corner = crowd_recall.portrait(image, np.array([0, 0, 20, 20.0]))  # a face in the photo's corner
    assert corner.shape == (44, 44, 3) and corner[:12].max() == 0  # the part above the photo is black


def test_uniform_pictures_use_one_face_a_photo_and_skip_photos_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    class Finder:
        def detect(self, image: np.ndarray) -> list:
            if not image.any():
                return []
            box = type("D", (), {"box": (10.0, 10.0, 30.0, 30.0)})()
            big = type("D", (), {"box": (0.0, 0.0, 40.0, 40.0)})()
            return [box, big]

    monkeypatch.setattr(crowd_recall, "create_detector", lambda spec: Finder())
    photos = [np.zeros((50, 50, 3), np.uint8), np.full((50, 50, 3), 9, np.uint8), np.full((50, 50, 3), 9, np.uint8)]
    cuts = crowd_recall.portraits(iter(photos), "ref", need=1)
    assert len(cuts) == 1 and cuts[0].shape == (88, 88, 3)  # the larger face (40 px), the blank photo skipped
