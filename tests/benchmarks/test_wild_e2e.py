"""benchmarks/wild_e2e.py: models side by side on labelled photos, end to end, with and without the mirror."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agegender.models.folder import save_model_folder
from agegender.models.model import ModelConfig, build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
wild_e2e = pytest.importorskip("wild_e2e")


@pytest.fixture
def photos(tmp_path: Path, make_astronaut_photos) -> Path:
    """Two labelled photos with a face (the astronaut and her mirror image) and one without."""
    root = make_astronaut_photos(tmp_path / "photos")
    (root / "labels.csv").write_text("path,age,gender\nastronaut.png,30,1\nmirrored.png,30,1\ngrey.png,40,0\n")
    return root / "labels.csv"


def test_two_models_scored_on_the_same_photos_and_the_mirror_passed_on(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = save_model_folder(build_model(ModelConfig(backbone="scratch_cnn", input_size=32)), tmp_path / "m")
    out = tmp_path / "plain.json"
    assert wild_e2e.main([str(model), str(model), "--data", str(photos), "--output", str(out)]) == 0
    plain = json.loads(out.read_text())
    assert plain["tta"] is False and len(plain["results"]) == 2
    first, second = plain["results"]
    assert first["photos"] == 3 and first["estimated"] == 2  # the grey frame has no face
    assert first["overall"] == second["overall"]
    assert "| 2 / 3 (66.7%) |" in out.with_suffix(".md").read_text()

    loaded: list[bool] = []
    load = wild_e2e.Predictor.load

    def spy(*args, **kwargs):
        loaded.append(kwargs["tta"])
        return load(*args, **kwargs)

    monkeypatch.setattr(wild_e2e.Predictor, "load", spy)
    mirrored = tmp_path / "tta.json"
    assert wild_e2e.main([str(model), "--data", str(photos), "--tta", "--output", str(mirrored)]) == 0
    tta = json.loads(mirrored.read_text())
    assert loaded == [True]  # the predictor averages each face with its mirror
    assert tta["tta"] is True and tta["results"][0]["estimated"] == 2 and "--tta" in tta["command"]
