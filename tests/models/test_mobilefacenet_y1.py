"""The ``mobilefacenet_y1`` backbone: InsightFace's MS1M MobileFaceNet renamed onto our MobileFaceNet trunk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from agegender.models import build_model, create_backbone
from agegender.models.backbones import MOBILEFACENET_Y1_FILE
from agegender.models.folder import read_config, save_model_folder
from agegender.models.mobilefacenet_y1 import Y1_EMBEDDING_PREFIXES, build_mobilefacenet_y1, y1_layer_names
from agegender.models.model import ModelConfig
from agegender.models.registry import WeightsError, WeightsNotFoundError

#: A few of the 334 keys of the shared file (``state_dict_keys.txt``), one per kind of layer.
Y1_SAMPLE_KEYS = {
    "conv_1.act.weight": "conv1.prelu.weight",
    "conv_2_dw.conv.weight": "dw_conv1.conv.weight",
    "dconv_23.conv_proj.bn.running_var": "blocks.0.conv.7.running_var",
    "res_3.3.conv_dw.act.weight": "blocks.4.conv.5.weight",
    "dconv_34.conv_sep.conv.weight": "blocks.5.conv.0.weight",
    "res_4.5.conv_proj.conv.weight": "blocks.11.conv.6.weight",
    "dconv_45.conv_dw.bn.bias": "blocks.12.conv.4.bias",
    "res_5.1.conv_sep.bn.weight": "blocks.14.conv.1.weight",
    "conv_6sep.act.weight": "conv2.prelu.weight",
}


def _insightface_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random y1 state dict in InsightFace's naming, embedding included, as the shared .pth holds it."""
    torch.manual_seed(seed)
    ours = build_mobilefacenet_y1().state_dict()
    back = {o: t for t, o in y1_layer_names().items()}
    state = {}
    for key, value in ours.items():
        layer, _, param = key.rpartition(".")
        state[f"{back[layer]}.{param}"] = value
    state |= {
        "conv_6dw7_7.conv.weight": torch.randn(512, 1, 7, 7),
        "pre_fc1.weight": torch.randn(128, 512),
        "fc1.running_var": torch.ones(128),
    }
    return state


def test_builds_a_512x7x7_map_at_112_px_and_pools_it() -> None:
    bb = create_backbone("mobilefacenet_y1")
    assert (bb.num_features, bb.default_size) == (512, 112)
    trunk = bb.module.net.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 112, 112)
        assert trunk.forward_features(x).shape == (2, 512, 7, 7)
        assert bb.module.eval()(x).shape == (2, 512)
        assert bb.module(torch.randn(1, 3, 128, 128)).shape == (1, 512)  # pooled: any size
    assert {m.eps for m in trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-3}  # MXNet's default
    assert trunk.linear7 is None and trunk.linear1 is None  # the 7x7 embedding is not part of the backbone
    with pytest.raises(ValueError, match="pooled_features"):
        trunk(x)


def test_layer_names_map_one_to_one_onto_the_trunk() -> None:
    names = y1_layer_names()
    assert len(set(names.values())) == len(names)
    layers = {k.rpartition(".")[0] for k in build_mobilefacenet_y1().state_dict()}
    assert set(names.values()) == layers
    for theirs, ours in Y1_SAMPLE_KEYS.items():
        assert f"{names[theirs.rpartition('.')[0]]}.{theirs.rpartition('.')[2]}" == ours


def test_default_normalisation_is_x_minus_127_5_over_128_and_reaches_the_folder_config(tmp_path: Path) -> None:
    net = build_model(ModelConfig(backbone="mobilefacenet_y1", hidden=8))
    pre = read_config(save_model_folder(net, tmp_path / "m"))["preprocessing"]
    assert pre["input_size"] == 112
    x = torch.rand(3, 4, 5)
    mean, std = torch.tensor(pre["mean"]).view(3, 1, 1), torch.tensor(pre["std"]).view(3, 1, 1)
    torch.testing.assert_close((x - mean) / std, (x * 255 - 127.5) / 128)


@pytest.mark.parametrize("layout", ["insightface", "own"])
def test_loads_a_state_dict_in_either_layout(layout: str, tmp_path: Path) -> None:
    if layout == "insightface":
        state = _insightface_state(seed=1)
        expected = {Y1_SAMPLE_KEYS[k]: v for k, v in state.items() if k in Y1_SAMPLE_KEYS}
    else:
        torch.manual_seed(1)
        state = create_backbone("mobilefacenet_y1").module.state_dict()  # saved from a fresh network
        expected = {k.removeprefix("net."): v for k, v in state.items()}
    torch.save(state, tmp_path / "y1.pth")
    torch.manual_seed(2)  # a different random init: only loading the file can make them equal
    loaded = create_backbone("mobilefacenet_y1", pretrained_path=str(tmp_path / "y1.pth")).module.net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    if layout == "own":
        assert loaded.keys() == expected.keys()


def test_wrong_keys_are_named_in_the_files_own_naming(tmp_path: Path) -> None:
    state = _insightface_state()
    del state["res_4.5.conv_dw.bn.weight"]
    state["conv_7.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(WeightsError) as e:
        create_backbone("mobilefacenet_y1", pretrained_path=str(tmp_path / "broken.pth"))
    msg = str(e.value)
    assert "broken.pth" in msg and "missing 1 keys ['res_4.5.conv_dw.bn.weight']" in msg
    assert "unexpected 1 keys ['conv_7.weight']" in msg
    # The embedding is optional: a file without it loads.
    state = {k: v for k, v in _insightface_state().items() if not k.startswith(Y1_EMBEDDING_PREFIXES)}
    torch.save(state, tmp_path / "trunk.pth")
    create_backbone("mobilefacenet_y1", pretrained_path=str(tmp_path / "trunk.pth"))


def test_the_casia_checkpoint_is_not_taken_for_y1(tmp_path: Path) -> None:
    torch.save({"net_state_dict": create_backbone("mobilefacenet").module.net.state_dict()}, tmp_path / "c.ckpt")
    with pytest.raises(
        WeightsError, match=r"not a MobileFaceNet y1 state dict: missing \d+ keys \['conv_1.act.weight'"
    ):
        create_backbone("mobilefacenet_y1", pretrained_path=str(tmp_path / "c.ckpt"))


def test_missing_weights_file_is_an_error_not_a_random_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGEGENDER_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as e:
        create_backbone("mobilefacenet_y1", pretrained=True)
    assert str(tmp_path / MOBILEFACENET_Y1_FILE) in str(e.value) and "model.pretrained=false" in str(e.value)
    with pytest.raises(WeightsNotFoundError, match="model.pretrained_path"):
        build_model(ModelConfig(backbone="mobilefacenet_y1", pretrained_path=str(tmp_path / "nope.pth")))


def test_exports_to_onnx_and_runs_on_onnxruntime(tmp_path: Path) -> None:
    from agegender.inference.compare import compare_backends
    from agegender.models.export import export_onnx

    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone="mobilefacenet_y1", hidden=16))
    result = compare_backends(net, export_onnx(net, tmp_path / "model.onnx"), "onnx", n=4)
    assert result["ok"], result


@pytest.mark.shared
def test_shared_weights_load_exactly_and_embed_faces(shared_asset, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trunk tensor comes from the file; with the file's own embedding on top, a chip and its mirror
    image (same person) embed close together and different people apart, as a face-recognition net should:
    measured on 8 chips, flip cosine >= 0.97 against ~0.19 across people; a random trunk has no margin."""
    from agegender.data.images import load_image
    from agegender.inference.preprocess import Preprocessor

    path = shared_asset(Path("weights") / MOBILEFACENET_Y1_FILE)
    monkeypatch.setenv("AGEGENDER_WEIGHTS_DIR", str(path.parents[1]))
    bb = create_backbone("mobilefacenet_y1", pretrained=True)
    src = torch.load(path, map_location="cpu", weights_only=True)
    assert len(src) == 334
    loaded = bb.module.net.state_dict()
    names = y1_layer_names()
    for key, value in src.items():
        if not key.startswith(Y1_EMBEDDING_PREFIXES):
            layer, _, param = key.rpartition(".")
            assert torch.equal(loaded[f"{names[layer]}.{param}"], value), key

    files = sorted(shared_asset("data/utkface/images").glob("*.jpg"))[::2000][:8]
    x = torch.from_numpy(Preprocessor(112, bb.mean, bb.std)([load_image(f) for f in files]))

    def embed(trunk: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        f = F.conv2d(trunk.forward_features(x), src["conv_6dw7_7.conv.weight"], groups=512)
        bn = [src[f"conv_6dw7_7.bn.{p}"] for p in ("running_mean", "running_var", "weight", "bias")]
        f = F.linear(F.batch_norm(f, *bn, eps=1e-3).flatten(1), src["pre_fc1.weight"], src["pre_fc1.bias"])
        return F.normalize(
            F.batch_norm(f, src["fc1.running_mean"], src["fc1.running_var"], None, src["fc1.bias"], eps=2e-5)
        )

    def margins(trunk: torch.nn.Module) -> tuple[torch.Tensor, float]:
        with torch.no_grad():
            e, ef = embed(trunk.eval(), x), embed(trunk, x.flip(-1))
        flip = (e * ef).sum(1)
        cross = (e @ e.T)[~torch.eye(len(x), dtype=torch.bool)]
        return flip, (flip.mean() - cross.mean()).item()

    flip, gap = margins(bb.module.net)
    assert flip.min() > 0.9, flip
    assert gap > 0.6, gap
    torch.manual_seed(0)
    assert margins(build_mobilefacenet_y1())[1] < 0.1  # a random trunk under the same embedding: no margin
