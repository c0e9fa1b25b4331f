"""The shipped default model: loads offline from the package, answers sensibly, ONNX agrees with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agegender import Predictor
from agegender.inference.compare import compare_backends
from agegender.models.folder import DEFAULT_MODEL_DIR, load_model_folder, read_config
from agegender.models.model import ModelConfig

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "config.json").is_file(), reason="no shipped model")

# The astronaut's face in skimage.data.astronaut() (Eileen Collins, an adult woman), cut at fixed coordinates
# as a UTKFace-like chip: whole face, chin to forehead.
ASTRONAUT_FACE = (slice(60, 175), slice(178, 268))


def test_files_and_config_round_trip():
    for name in ("model.safetensors", "model.onnx", "config.json", "MODEL_CARD.md", "split.json"):
        assert (DEFAULT_MODEL_DIR / name).is_file(), name
    cfg = read_config(DEFAULT_MODEL_DIR)
    assert cfg["labels"]["gender"] == {"0": "male", "1": "female"}
    assert cfg["preprocessing"]["crop"] == "utkface_chip_200"
    model_cfg = ModelConfig(**cfg["model"])
    # Settings added since the model was saved take their defaults (``init``: not fine-tuned from a folder).
    assert json.loads(json.dumps(model_cfg.to_dict())) == {"init": None, **cfg["model"]}
    assert model_cfg.pretrained is False  # loading never reaches for ImageNet weights
    assert "non-commercial" in (DEFAULT_MODEL_DIR / "MODEL_CARD.md").read_text()


def test_loads_offline_without_shared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for var in ("TORCH_HOME", "AGEGENDER_WEIGHTS_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "nothing"))
    net = load_model_folder()
    assert net.input_size == read_config(DEFAULT_MODEL_DIR)["preprocessing"]["input_size"]


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_astronaut_is_an_adult_woman(backend: str):
    from skimage.data import astronaut

    face = Predictor.load(backend=backend).predict(astronaut()[ASTRONAUT_FACE], detect=False)[0]
    assert face.gender == "female" and face.p_female > 0.5
    assert 20 <= face.age <= 60
    assert face.age_low < face.age < face.age_high


def test_onnx_matches_pytorch():
    net = load_model_folder()
    report = compare_backends(net, DEFAULT_MODEL_DIR / "model.onnx")
    assert report["ok"], report


@pytest.mark.shared
def test_sensible_on_utkface_test_faces(shared_asset):
    """On 40 faces of our own test split: mean absolute error well under 10 years, gender mostly right."""
    from agegender.data.readers import parse_utkface_name

    split = json.loads((DEFAULT_MODEL_DIR / "split.json").read_text())["assignment"]
    from agegender.data.images import digest_bytes

    images = sorted(shared_asset("data/utkface/images").glob("*.jpg"))[::97]
    chosen = [p for p in images if split.get(digest_bytes(p.read_bytes())) == "test"][:40]
    assert len(chosen) >= 10
    faces = Predictor.load().predict_batch(chosen, detect=False)
    labels = [parse_utkface_name(p.name) for p in chosen]
    err = np.mean([abs(f[0].age - lab[0]) for f, lab in zip(faces, labels, strict=True)])
    acc = np.mean([(f[0].gender == "female") == (lab[1] == 1) for f, lab in zip(faces, labels, strict=True)])
    assert err < 8 and acc >= 0.8, (err, acc)
