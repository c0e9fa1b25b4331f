"""Backbone registry, AgeGenderNet output shapes, model folders and pretrained-weight loaders."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from agegender.models import build_model, create_backbone, list_backbones
from agegender.models.backbones import LITE0_FILE, MOBILEFACENET_FILE, MOBILEFACENET_Y1_FILE
from agegender.models.folder import load_model_folder, save_model_folder
from agegender.models.heads import FeatureAttention
from agegender.models.mobilefacenet import load_mobilefacenet_casia
from agegender.models.model import ModelConfig
from agegender.models.registry import WeightsError

EXPECTED_BACKBONES = {
    "scratch_cnn",
    "resnet18",
    "resnet34",
    "resnet50",
    "mobilenet_v2",
    "efficientnet_b0",
    "efficientnet_b1",
    "efficientnet_b2",
    "efficientnet_b3",
    "efficientnet_b4",
    "efficientnet_lite0",
    "mobilefacenet",
    "mobilefacenet_y1",
}
HEAD_COMBOS = [("distribution", "bce"), ("distribution", "ce"), ("regression", "bce"), ("regression", "ce")]
BACKBONES = sorted(EXPECTED_BACKBONES)


def _check_outputs(net, x: torch.Tensor, age_head: str, gender_head: str, num_bins: int = 101) -> None:
    b = x.shape[0]
    with torch.no_grad():
        out = net(x)
        age, std, p_female = net.decode(out)
    assert set(out) == {"age", "gender"}
    assert out["age"].shape == ((b, num_bins) if age_head == "distribution" else (b,))
    assert out["gender"].shape == ((b,) if gender_head == "bce" else (b, 2))
    assert age.shape == std.shape == p_female.shape == (b,)
    assert torch.isfinite(age).all()
    assert ((p_female >= 0) & (p_female <= 1)).all()
    if age_head == "distribution":
        assert ((age >= 0) & (age <= num_bins - 1)).all()
        assert (std >= 0).all()
    else:
        assert torch.isnan(std).all()


def test_registry_lists_every_builtin_backbone():
    assert set(list_backbones()) >= EXPECTED_BACKBONES


def test_list_backbones_works_before_anything_imports_them(monkeypatch: pytest.MonkeyPatch):
    # `agegender train --list` calls list_backbones() first thing: it used to print an empty list because the
    # built-in backbones register themselves only when agegender.models.backbones is imported.
    import agegender.models
    import agegender.models.registry as registry

    monkeypatch.setattr(registry.BACKBONES, "_items", {})
    monkeypatch.delitem(sys.modules, "agegender.models.backbones")
    monkeypatch.setattr(agegender.models, "backbones", agegender.models.backbones, raising=False)
    assert set(registry.list_backbones()) >= EXPECTED_BACKBONES


@pytest.mark.parametrize("backbone", BACKBONES)
def test_backbone_builds_and_net_output_shapes(backbone: str):
    torch.manual_seed(0)
    # every backbone gets one head combination, so that all four combinations are covered across backbones
    age_head, gender_head = HEAD_COMBOS[BACKBONES.index(backbone) % len(HEAD_COMBOS)]
    net = build_model(
        ModelConfig(backbone=backbone, input_size=32, age_head=age_head, gender_head=gender_head, hidden=16)
    ).eval()
    assert net.input_size == 32 and len(net.mean) == len(net.std) == 3
    assert isinstance(net.backbone, nn.Module)
    num_features = net.gender_head.body[0].in_features  # the heads are sized from Backbone.num_features
    assert isinstance(net.neck, FeatureAttention) == backbone.startswith("efficientnet_b")
    feats = []
    net.backbone.register_forward_hook(lambda m, i, o: feats.append(o))
    _check_outputs(net, torch.rand(2, 3, 32, 32), age_head, gender_head)
    assert feats[0].shape == (2, num_features)


@pytest.mark.parametrize("backbone", ["scratch_cnn", "resnet18"])
@pytest.mark.parametrize(("age_head", "gender_head"), HEAD_COMBOS)
def test_all_head_combinations(backbone: str, age_head: str, gender_head: str):
    net = build_model(
        {
            "backbone": backbone,
            "age_head": age_head,
            "gender_head": gender_head,
            "hidden": 8,
            "head_layers": 2,
            "attention": True,
        }
    ).eval()
    assert isinstance(net.neck, FeatureAttention)
    _check_outputs(net, torch.rand(3, 3, 32, 32), age_head, gender_head)


def test_num_bins_and_unknown_names():
    net = build_model(ModelConfig(backbone="scratch_cnn", num_bins=61, hidden=0)).eval()
    _check_outputs(net, torch.rand(2, 3, 32, 32), "distribution", "bce", num_bins=61)
    with pytest.raises(ValueError, match="unknown backbone 'resnet19'.*resnet18"):
        create_backbone("resnet19")
    with pytest.raises(ValueError, match="age head must be"):
        build_model(ModelConfig(backbone="scratch_cnn", age_head="ordinal"))
    with pytest.raises(ValueError, match="gender head must be"):
        build_model(ModelConfig(backbone="scratch_cnn", gender_head="softmax"))


def test_model_folder_roundtrip(tmp_path: Path):
    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone="scratch_cnn", input_size=32, gender_head="ce", hidden=8)).eval()
    folder = save_model_folder(net, tmp_path / "model", {"note": "x"})
    assert {p.name for p in folder.iterdir()} >= {"model.safetensors", "config.json"}
    loaded = load_model_folder(folder)
    assert not loaded.training and loaded.input_size == 32 and loaded.cfg.gender_head == "ce"
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(net.predict(x), loaded.predict(x), strict=True):
            torch.testing.assert_close(a, b)


# --- pretrained weights: clear errors, and the shared files load --------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    """Whatever tries the network must fail fast: no machine here has internet, none may hang on it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    yield
    socket.setdefaulttimeout(old)


@pytest.mark.parametrize(
    ("backbone", "rel"),
    [
        ("efficientnet_lite0", LITE0_FILE),
        ("mobilefacenet", MOBILEFACENET_FILE),
        ("mobilefacenet_y1", MOBILEFACENET_Y1_FILE),
    ],
)
def test_local_weights_missing_says_where_it_looked(
    backbone: str, rel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("AGEGENDER_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsError, match="AGEGENDER_WEIGHTS_DIR is not set"):
        create_backbone(backbone, pretrained=True)
    monkeypatch.setenv("AGEGENDER_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError) as e:
        create_backbone(backbone, pretrained=True)
    assert str(tmp_path / rel) in str(e.value)
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError) as e:
        create_backbone(backbone, pretrained_path=str(missing))
    assert str(missing) in str(e.value) and "model.pretrained=false" in str(e.value)


def test_scratch_cnn_has_no_pretrained_weights():
    with pytest.raises(WeightsError, match="no pretrained weights"):
        create_backbone("scratch_cnn", pretrained=True)


def test_torchvision_weights_offline_fail_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    start = time.monotonic()
    with pytest.raises(WeightsError) as e:
        create_backbone("resnet18", pretrained=True)
    assert time.monotonic() - start < 60
    msg = str(e.value)
    assert "resnet18" in msg and str(tmp_path / "torch") in msg and "TORCH_HOME" in msg


@pytest.fixture
def hub_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """An empty hub cache; every connection attempt and every retry back-off is recorded, none is made."""
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    calls: dict[str, list] = {"connect": [], "sleep": []}
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(_http.time, "sleep", lambda s: calls["sleep"].append(s))

    def refuse(address, timeout=None, *args):
        calls["connect"].append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return calls


@pytest.mark.parametrize("offline_mode", [True, False])
def test_timm_weights_offline_fail_fast(offline_mode: bool, hub_calls: dict, monkeypatch: pytest.MonkeyPatch):
    # The efficientnet_b4_dldl recipe used to spend ~50 s in the hub client's retries before this error.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline_mode)
    with pytest.raises(WeightsError) as e:
        create_backbone("efficientnet_b0", pretrained=True)
    msg = str(e.value)
    assert "efficientnet_b0" in msg and "model.pretrained_path=FILE" in msg and "not in the Hugging Face cache" in msg
    if offline_mode:
        assert "HF_HUB_OFFLINE is set" in msg and hub_calls["connect"] == []
    else:
        assert "cannot reach huggingface.co:443 (Connection refused)" in msg
        assert hub_calls["connect"] == [("huggingface.co", 443)]  # one probe, then the cache only
    assert hub_calls["sleep"] == []  # no retry
    assert constants.HF_HUB_OFFLINE is offline_mode  # the offline switch is put back


def test_lite0_loads_shared_weights(shared_dir: Path, monkeypatch: pytest.MonkeyPatch):
    path = shared_dir / "weights" / LITE0_FILE
    if not path.is_file():
        pytest.skip(f"shared asset absent: {path}")
    monkeypatch.setenv("AGEGENDER_WEIGHTS_DIR", str(shared_dir / "weights"))
    bb = create_backbone("efficientnet_lite0", pretrained=True)
    src = torch.load(path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(bb.module.conv_stem.weight, src["_conv_stem.weight"])
    assert bb.mean == (0.5, 0.5, 0.5)
    explicit = create_backbone("efficientnet_lite0", pretrained_path=str(path))
    torch.testing.assert_close(explicit.module.conv_stem.weight, src["_conv_stem.weight"])


def test_mobilefacenet_loads_shared_weights(shared_dir: Path, monkeypatch: pytest.MonkeyPatch):
    path = shared_dir / "weights" / MOBILEFACENET_FILE
    if not path.is_file():
        pytest.skip(f"shared asset absent: {path}")
    monkeypatch.setenv("AGEGENDER_WEIGHTS_DIR", str(shared_dir / "weights"))
    bb = create_backbone("mobilefacenet", pretrained=True)
    loaded = bb.module.net.state_dict()
    expected = load_mobilefacenet_casia(path)
    assert expected.keys() == loaded.keys()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    with torch.no_grad():
        assert bb.module.eval()(torch.rand(1, 3, 64, 64)).shape == (1, 512)


def test_mobilenet_v2_loads_from_shared_torch_home(shared_dir: Path, monkeypatch: pytest.MonkeyPatch, no_network):
    ckpt = shared_dir / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    if not ckpt.is_file():
        pytest.skip(f"shared asset absent: {ckpt}")
    monkeypatch.setenv("TORCH_HOME", str(shared_dir / "torch"))
    bb = create_backbone("mobilenet_v2", pretrained=True)
    src = torch.load(ckpt, map_location="cpu", weights_only=True)
    torch.testing.assert_close(bb.module.features[0][0].weight, src["features.0.0.weight"])
    assert bb.num_features == 1280


# --- model.pretrained_path: honoured for every backbone, in one place ------------------------------------------

#: EfficientNet-B1..B4 are B0 scaled up (same timm code path, tested through B0); building, saving and loading
#: each costs seconds on 2 cores, so they are left out of the per-backbone round trip.
SLOW_SIZES = {"efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4"}


@pytest.mark.parametrize("backbone", sorted(set(list_backbones()) - SLOW_SIZES))
def test_pretrained_path_is_loaded_for_every_backbone(backbone: str, tmp_path: Path):
    # resnet* and mobilenet_v2 used to ignore the path: a random network, and a model card saying "ImageNet".
    torch.manual_seed(1)
    saved = create_backbone(backbone).module.state_dict()
    path = tmp_path / f"{backbone}.pth"
    torch.save(saved, path)
    torch.manual_seed(2)  # a different random init: only loading the file can make them equal
    loaded = create_backbone(backbone, pretrained_path=str(path)).module.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())
    with pytest.raises(WeightsError) as e:
        create_backbone(backbone, pretrained_path=str(tmp_path / "missing.pth"))
    assert str(tmp_path / "missing.pth") in str(e.value) and "model.pretrained_path" in str(e.value)


def test_pretrained_path_that_does_not_fit_is_an_error(tmp_path: Path):
    path = tmp_path / "resnet18.pth"
    torch.save({**create_backbone("resnet18").module.state_dict(), "fc.weight": torch.zeros(1000, 512)}, path)
    create_backbone("resnet18", pretrained_path=str(path))  # an ImageNet head is dropped, as in torchvision files
    with pytest.raises(WeightsError, match=r"resnet18.pth does not fit resnet34: missing \['layer1.2"):
        create_backbone("resnet34", pretrained_path=str(path))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth is not a readable weights file"):
        create_backbone("resnet18", pretrained_path=str(tmp_path / "junk.pth"))


def test_damaged_model_folder_config_is_a_user_error(tmp_path: Path):
    from agegender.errors import AgeGenderError
    from agegender.models.folder import read_config

    (tmp_path / "config.json").write_text('{"model": ')
    with pytest.raises(AgeGenderError, match="config.json is not valid JSON"):
        read_config(tmp_path)
