"""Model folders: config.json is read and checked without torch; checkpoints load without Lightning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from agegender.errors import AgeGenderError
from agegender.inference.engine import OnnxEngine, load_engine, load_net
from agegender.models.folder import (
    DEFAULT_MODEL_DIR,
    ModelFormatError,
    Preprocessing,
    read_config,
    save_model_folder,
)
from agegender.models.model import ModelConfig, build_model


def _copy_default(tmp_path: Path, change) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_unknown_format_version_is_a_clear_user_error(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path, lambda c: c.update(format_version=99))
    with pytest.raises(ModelFormatError, match="format_version 99 is not supported") as info:
        read_config(folder)
    assert isinstance(info.value, AgeGenderError)


def test_unsupported_preprocessing_is_refused(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path, lambda c: c["preprocessing"].update(color="BGR"))
    with pytest.raises(ModelFormatError, match="color='BGR'"):
        OnnxEngine.from_folder(folder)


def test_onnx_engine_needs_only_config_and_onnx(tmp_path: Path) -> None:
    """The runtime reads model.onnx and config.json: the safetensors file may be absent."""
    folder = _copy_default(tmp_path, lambda c: c.update(calibration={"interval_scale": {"ok": 1.0, "small": 1.5}}))
    (folder / "model.safetensors").unlink()
    engine, config = load_engine(folder)
    assert engine.name == "onnx" and engine.pre.size == 112
    assert config["calibration"]["interval_scale"]["small"] == 1.5 and "training" in config
    age, std, pf = engine.run(engine.pre([np.zeros((200, 200, 3), np.uint8)]))
    assert age.shape == std.shape == pf.shape == (1,)


def test_saved_config_states_the_whole_preprocessing(tmp_path: Path) -> None:
    net = build_model(ModelConfig(backbone="scratch_cnn", input_size=64))
    config = read_config(save_model_folder(net, tmp_path / "m"))
    spec = Preprocessing.from_config(config)
    assert (spec.input_size, spec.mean, spec.std) == (64, tuple(net.mean), tuple(net.std))
    assert config["preprocessing"]["resize"] == "area" and config["preprocessing"]["layout"] == "NCHW"


def test_checkpoint_loads_without_lightning(tmp_path: Path) -> None:
    """A Lightning .ckpt (``net.*`` weights + hyper_parameters) gives the same network back."""
    cfg = ModelConfig(backbone="scratch_cnn", input_size=64)
    net = build_model(cfg).eval()
    ckpt = tmp_path / "best.ckpt"
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"model": {**cfg.to_dict(), "pretrained": True}}}, ckpt)
    loaded, meta = load_net(ckpt)
    assert meta == {"checkpoint": str(ckpt)}
    x = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        for a, b in zip(net.predict(x), loaded.predict(x), strict=True):
            torch.testing.assert_close(a, b, equal_nan=True)
