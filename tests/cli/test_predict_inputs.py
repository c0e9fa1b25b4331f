"""``agegender predict`` on what users get wrong: contradicting options, odd inputs, manifests with bad rows,
standard output. Each is one clear line and the right exit code, and the good inputs still get their rows."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender.cli.main import main
from agegender.models.folder import save_model_folder
from agegender.models.model import ModelConfig, build_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model_folder(
        build_model(ModelConfig(backbone="scratch_cnn", input_size=32)), tmp_path_factory.mktemp("m") / "model"
    )


@pytest.fixture
def crops(tmp_path: Path) -> Path:
    """Two face-crop-like images, read with --no-detect (the network, not detection, is what runs)."""
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / name)
    return tmp_path


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--manifest", "m.csv"], "not both"),
        (["--competition", "."], "give no other inputs"),
        (["--detector-model", "x.onnx"], "--detector-model is for detectors with a model file"),
        (["--detector", "mtcnn:min_face_size=abc"], "min_face_size='abc' must be a number"),
        (["--detector", "mtcnn:landmark_vote=maybe"], "must be True or False"),
        (["--no-detect", "--min-face", "20"], "with --no-detect there are none"),
    ],
)
def test_contradicting_or_idle_options_are_refused_before_any_work(
    extra: list[str], message: str, crops: Path, model_dir: Path, capsys
) -> None:
    code, out, err = _run(["predict", str(crops / "a.png"), "--model", str(model_dir), "-q", *extra], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error:") and message in err


@pytest.mark.parametrize(
    ("extra", "message"), [(["--format", "json"], "--format must be csv"), (["-o", "sub.json"], "should end in .csv")]
)
def test_competition_output_must_be_its_csv(extra: list[str], message: str, tmp_path: Path, model_dir: Path, capsys):
    (tmp_path / "test.csv").write_text("id\n1\n")
    code, _, err = _run(["predict", "--competition", str(tmp_path), "--model", str(model_dir), *extra], capsys)
    assert code == 2 and message in err


def test_competition_names_each_row_that_got_the_filler(crops: Path, model_dir: Path, capsys) -> None:
    (crops / "7.png").write_bytes((crops / "a.png").read_bytes())
    (crops / "8.png").write_text("not an image")
    (crops / "test.csv").write_text("id\n7\n8\n9\n")
    code, out, err = _run(
        ["predict", "--competition", str(crops), "--model", str(model_dir), "--no-detect", "-q", "-o", "-"], capsys
    )
    assert code == 1
    rows = list(csv.reader(io.StringIO(out)))  # -o -: the submission on standard output
    assert [r[0] for r in rows] == ["id", "7", "8", "9"]
    assert "note: id 8: " in err and "not a readable image" in err
    assert "note: id 9: " in err and "note: id 7" not in err
    assert not (crops / "submission.csv").exists()


def test_dash_output_is_standard_output(crops: Path, model_dir: Path, capsys) -> None:
    code, out, _ = _run(
        ["predict", str(crops / "a.png"), "--model", str(model_dir), "--no-detect", "-q", "-o", "-"]
        + ["--format", "json"],
        capsys,
    )
    assert code == 0 and json.loads(out)[0]["status"] == "ok"
    assert not Path("-").exists()


def test_manifest_problems_are_named(crops: Path, model_dir: Path, capsys) -> None:
    code, _, err = _run(["predict", "--manifest", str(crops / "none.csv"), "--model", str(model_dir)], capsys)
    assert code == 2 and "none.csv: no such file" in err
    (crops / "extra.csv").write_text("path,id\na.png,1,surplus\n")
    code, _, err = _run(["predict", "--manifest", str(crops / "extra.csv"), "--model", str(model_dir)], capsys)
    assert code == 2 and "more fields than the header" in err
    (crops / "m.csv").write_text('path,id\na.png,1\n"",2\nb.png,3\n')  # relative to the manifest's folder
    code, out, _ = _run(
        ["predict", "--manifest", str(crops / "m.csv"), "--model", str(model_dir), "--no-detect", "-q", "-o", "-"]
        + ["--format", "json"],
        capsys,
    )
    results = json.loads(out)
    assert code == 1 and [r["status"] for r in results] == ["ok", "error", "ok"]
    assert "row 3: the path cell is empty" in results[1]["message"]


def test_inputs_that_are_no_files_get_their_row_and_the_others_go_on(crops: Path, model_dir: Path, capsys) -> None:
    (crops / "gone.png").symlink_to(crops / "deleted.png")
    inputs = [str(crops), str(crops / "*.xyz")]
    if hasattr(os, "mkfifo"):
        os.mkfifo(crops / "pipe.jpg")  # would block a reader forever
        inputs.append(str(crops / "pipe.jpg"))
    code, out, _ = _run(
        ["predict", *inputs, "--model", str(model_dir), "--no-detect", "-q", "-o", "-", "--format", "json"], capsys
    )
    by_name = {Path(r["path"]).name: r for r in json.loads(out)}
    assert code == 1
    assert by_name["a.png"]["status"] == by_name["b.png"]["status"] == "ok"
    assert "a link to a file that does not exist" in by_name["gone.png"]["message"]
    assert "no file matches this pattern" in by_name["*.xyz"]["message"]
    if hasattr(os, "mkfifo"):
        assert "not a regular file" in by_name["pipe.jpg"]["message"]


def test_a_folder_without_images_beside_other_inputs_is_named(crops: Path, model_dir: Path, capsys) -> None:
    (crops / "empty").mkdir()
    code, _, err = _run(
        ["predict", str(crops / "empty"), str(crops / "a.png"), "--model", str(model_dir), "--no-detect", "-q"], capsys
    )
    assert code == 0 and f"note: no images in {crops / 'empty'} (--recursive / -r reads sub-folders)" in err


def _ctrl_c() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("stop", "code", "name"),
    [(_ctrl_c, 130, "Ctrl-C"), (lambda: signal.raise_signal(signal.SIGTERM), 143, "SIGTERM")],
    ids=["ctrl-c", "sigterm"],
)
def test_a_stop_writes_the_inputs_finished_so_far(
    stop, code: int, name: str, crops: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from agegender.inference import batch

    run = batch.run_predictions

    def stopped_after_one(*args, **kwargs):
        results = run(*args, **kwargs)
        yield next(results)
        stop()  # as if the signal came while the second input was read (SIGTERM: predict's handler raises)

    monkeypatch.setattr(batch, "run_predictions", stopped_after_one)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "out.json"
    got, _, err = _run(["predict", str(crops), "--model", str(model_dir), "--no-detect", "-q", "-o", str(out)], capsys)
    assert got == code and f"{name} after 1 of 2 inputs: writing those" in err
    assert f"stopped by {name}: 1 of 2 inputs done and written" in err
    assert [Path(r["path"]).name for r in json.loads(out.read_text())] == ["a.png"]
    assert signal.getsignal(signal.SIGTERM) is before  # put back as it was
