"""Exports (ONNX, TorchScript) give the same answers as PyTorch, from the API and from ``agegender export``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.data import astronaut

from agegender.cli.main import main
from agegender.faces import create_detector
from agegender.inference import compare
from agegender.inference.compare import TOLERANCE, compare_backends
from agegender.inference.engine import OnnxEngine
from agegender.inference.predictor import Predictor
from agegender.models.export import export_onnx
from agegender.models.folder import save_model_folder
from agegender.models.model import ModelConfig, build_model


def _net(age_head: str = "distribution"):
    torch.manual_seed(0)
    return build_model(ModelConfig(backbone="scratch_cnn", input_size=64, age_head=age_head))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model_folder(_net(), tmp_path_factory.mktemp("onnx") / "model")


@pytest.mark.parametrize("age_head", ["distribution", "regression"])
def test_export_matches_torch(tmp_path: Path, age_head: str) -> None:
    net = _net(age_head)
    path = export_onnx(net, tmp_path / "sub" / "model.onnx")
    assert path.is_file() and not list(tmp_path.glob("sub/*.tmp"))
    result = compare_backends(net, path, "onnx", n=8)
    assert result["ok"], result
    assert result["tolerance"] == TOLERANCE
    diffs = result["max_abs_diff"]
    assert set(diffs) == {"age", "age_std", "p_female"}
    assert all(np.isfinite(v) and v <= TOLERANCE[k] for k, v in diffs.items()), diffs
    # Dynamic batch axis: any batch size runs, outputs are 1-d per image.
    x = np.random.default_rng(1).normal(size=(3, 3, 64, 64)).astype(np.float32)
    age, std, pf = OnnxEngine(path, net.input_size, net.mean, net.std).run(x)
    assert age.shape == std.shape == pf.shape == (3,)
    assert np.all((pf >= 0) & (pf <= 1))
    if age_head == "regression":
        assert np.isnan(std).all()  # no spread for regression: NaN, exactly as PyTorch gives
    else:
        assert np.all(np.isfinite(std) & (std > 0))


def test_compare_detects_disagreement(tmp_path: Path) -> None:
    """The check must be able to fail: a different network's export is flagged."""
    path = export_onnx(_net(), tmp_path / "model.onnx")
    torch.manual_seed(123)
    other = build_model(ModelConfig(backbone="scratch_cnn", input_size=64))
    result = compare_backends(other, path, "onnx", n=4)
    assert not result["ok"]


@pytest.mark.parametrize("age_head", ["distribution", "regression"])
def test_compare_detects_nan_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age_head: str) -> None:
    """NaN means "no estimate" (a regression head's std): an export that turns it into a number, or a number
    into NaN, disagrees with PyTorch even though no finite value differs."""
    net = _net(age_head)
    path = export_onnx(net, tmp_path / "model.onnx")
    run = OnnxEngine.run

    def flipped_std(self, batch):
        age, std, pf = run(self, batch)
        return age, np.where(np.isnan(std), 0.0, np.nan).astype(np.float32), pf

    monkeypatch.setattr(OnnxEngine, "run", flipped_std)
    result = compare_backends(net, path, "onnx", n=4)
    assert not result["ok"], result
    assert result["max_abs_diff"]["age"] <= TOLERANCE["age"]  # only the NaN pattern differs


def test_cli_export_onnx_check(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(model_dir), "--check"]) == 0
    assert (model_dir / "model.onnx").is_file()
    out = capsys.readouterr().out
    assert "wrote" in out and "'ok': True" in out


def test_cli_export_check_fails_when_outside_tolerance(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(compare.TOLERANCE, "age", -1.0)  # nothing can agree within a negative tolerance
    assert main(["export", str(model_dir), "--output", str(tmp_path / "m.onnx"), "--check"]) != 0
    assert "'ok': False" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit is deprecated, still supported
def test_cli_export_torchscript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A regression head (the distribution head is covered by ONNX): its NaN std must survive tracing."""
    folder = save_model_folder(_net("regression"), tmp_path / "model")
    assert main(["export", str(folder), "--format", "torchscript", "--check"]) == 0
    out_file = folder / "model.torchscript.pt"
    assert out_file.is_file()
    assert "'ok': True" in capsys.readouterr().out
    mod = torch.jit.load(str(out_file))
    age, std, pf = mod(torch.zeros(2, 3, 64, 64))
    assert age.shape == (2,) and pf.shape == (2,)
    assert bool(torch.isnan(std).all())


def test_cli_export_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "config.json" in err


def test_onnx_and_torch_predictor_agree_on_astronaut(model_dir: Path) -> None:
    detector = create_detector("auto")
    image = astronaut()
    faces = {b: Predictor.load(model_dir, backend=b, detector=detector).predict(image) for b in ("torch", "onnx")}
    assert len(faces["torch"]) == len(faces["onnx"]) == 1
    t, o = faces["torch"][0], faces["onnx"][0]
    assert t.status == o.status == "ok"
    assert t.box == o.box
    assert abs(t.age - o.age) <= 0.05
    assert abs(t.age_std - o.age_std) <= 0.05
    assert abs(t.p_female - o.p_female) <= 1e-3
    assert t.gender == o.gender or abs(t.p_female - 0.5) < 1e-3
    json.dumps([t.to_dict(), o.to_dict()], allow_nan=False)


@pytest.mark.parametrize(("channels", "shape"), [(8, (2, 8, 5, 5)), (1, (2, 8, 5, 5)), (8, (3, 8))])
def test_relu_form_prelu_is_the_same_function(channels: int, shape: tuple[int, ...]) -> None:
    from agegender.models.export import ReluFormPReLU

    torch.manual_seed(0)
    prelu = torch.nn.PReLU(channels)
    with torch.no_grad():
        prelu.weight.copy_(torch.randn(channels))  # negative, zero and >1 slopes alike
    x = torch.randn(*shape)
    torch.testing.assert_close(ReluFormPReLU(prelu)(x), prelu(x), atol=1e-6, rtol=1e-6)


def test_mobilefacenet_exports_without_prelu_nodes_and_matches_torch(tmp_path: Path) -> None:
    """PReLU nodes force ONNX Runtime out of its fast layout; the export rewrites them, the answers stay put."""
    import onnx

    from agegender.models.export import onnx_friendly

    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone="mobilefacenet", input_size=112)).eval()
    assert any(isinstance(m, torch.nn.PReLU) for m in net.modules())
    assert not any(isinstance(m, torch.nn.PReLU) for m in onnx_friendly(net).modules())
    assert any(isinstance(m, torch.nn.PReLU) for m in net.modules())  # the original is left alone
    folder = save_model_folder(net, tmp_path / "mfn")
    export_onnx(net, folder / "model.onnx")
    ops = {node.op_type for node in onnx.load(str(folder / "model.onnx")).graph.node}
    assert "PRelu" not in ops and "Relu" in ops
    report = compare_backends(net, folder / "model.onnx", n=4)
    assert report["ok"], report


def test_cli_export_leaves_the_shipped_folder_alone_unless_output_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A default export used to overwrite the installed model.onnx; now it lands under runs/export/.
    shipped = save_model_folder(_net(), tmp_path / "shipped")
    monkeypatch.setattr("agegender.models.folder.DEFAULT_MODEL_DIR", shipped)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in shipped.iterdir())
    assert main(["export"]) == 0
    assert (tmp_path / "runs" / "export" / "model.onnx").is_file()
    assert "wrote runs/export/model.onnx" in capsys.readouterr().out
    assert sorted(p.name for p in shipped.iterdir()) == before and not (shipped / "model.onnx").exists()
    assert main(["export", "--output", str(shipped / "model.onnx")]) == 0  # named: written where asked
    assert (shipped / "model.onnx").is_file()
