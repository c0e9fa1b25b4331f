"""benchmarks/detector_recall.py: faces matched one to one, the rest counted as missed or extra, by size."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
detector_recall = pytest.importorskip("detector_recall")


def test_each_reference_face_matches_at_most_one_found_face() -> None:
    reference = [np.array([[0, 0, 100, 100], [200, 0, 225, 25]], float), np.empty((0, 4))]
    found = [np.array([[5, 5, 100, 100], [0, 0, 95, 95], [400, 400, 450, 450]], float), np.array([[0, 0, 40, 40.0]])]
    out = detector_recall.compare(reference, found)
    assert [(p, b.tolist()) for p, b in out["matched"]] == [(0, [5, 5, 100, 100])]  # the closer of the two
    assert [(p, b.tolist()) for p, b in out["missed"]] == [(0, [200, 0, 225, 25])]
    assert sorted((p, b[0]) for p, b in out["extra"]) == [(0, 0), (0, 400), (1, 0)]
    assert detector_recall.by_size(out["missed"] + out["extra"]) == {"< 30 px": 1, "30-60 px": 2, ">= 60 px": 1}


def test_main_writes_the_table_and_the_sheet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(photos / name), np.full((80, 80, 3), 128, np.uint8))
    boxes = {
        "ref": [np.array([[10, 10, 50, 50.0]]), np.empty((0, 4))],
        "x": [np.empty((0, 4)), np.array([[0, 0, 70, 70.0]])],
    }
    monkeypatch.setattr(
        detector_recall,
        "labelled_records",
        lambda data, split_file, split: [type("R", (), {"path": photos / n})() for n in ("a.jpg", "b.jpg")],
    )
    monkeypatch.setattr(detector_recall, "detect_all", lambda spec, paths: (boxes[spec], [[] for _ in paths]))
    out = tmp_path / "recall.json"
    args = [
        "--data",
        str(photos),
        "--reference",
        "ref",
        "--detector",
        "x",
        "--sheet",
        str(tmp_path),
        "--output",
        str(out),
    ]
    assert detector_recall.main(args) == 0
    text = out.with_suffix(".md").read_text()
    assert "| x | 1 | 0 | 1 (0 / 1 / 0) | 1 (0 / 0 / 1) |" in text
    assert cv2.imread(str(tmp_path / "train_x.jpg")).shape[1] == 10 * detector_recall.TILE
