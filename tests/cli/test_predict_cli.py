"""``agegender predict`` (folders, json/csv, exit codes, the competition layout) and ``agegender benchmark speed``."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import astronaut

from agegender.cli.main import main
from agegender.inference.batch import FALLBACK_AGE
from agegender.models.folder import save_model_folder
from agegender.models.model import ModelConfig, build_model

#: The astronaut's face (x1, y1, x2, y2): crops around it stand in for UTKFace-like competition images.
FACE = (178, 60, 268, 175)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model_folder(
        build_model(ModelConfig(backbone="scratch_cnn", input_size=64)), tmp_path_factory.mktemp("cli") / "model"
    )


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, make_astronaut_photos) -> Path:
    """Two photos with one face each (the astronaut and her mirror image)."""
    return make_astronaut_photos(tmp_path_factory.mktemp("photos"), grey=False)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and "Error:" not in err.replace("error:", ""), err


def test_predict_folder_json(model_dir: Path, photos: Path, tmp_path: Path, capsys) -> None:
    out_file = tmp_path / "res" / "out.json"
    code, out, err = _run(
        ["predict", str(photos), "--model", str(model_dir), "--format", "json", "-o", str(out_file), "--quiet"], capsys
    )
    assert code == 0, err
    assert f"wrote {out_file}" in out
    assert err.strip().splitlines()[-1] == (
        "2 files: 2 with an estimate, 0 without a face, 0 with every face skipped, 0 unreadable; "
        "faces: 2 ok, 0 low quality, 0 skipped"
    )
    data = json.loads(out_file.read_text())
    assert [Path(r["path"]).name for r in data] == ["astronaut.png", "mirrored.png"]
    for r in data:
        assert r["status"] == "ok" and len(r["faces"]) == 1
        face = r["faces"][0]
        assert face["age_low"] <= face["age"] <= face["age_high"] and face["gender"] in ("male", "female")
    assert not [p for p in out_file.parent.iterdir() if p.name != "out.json"]  # no temporary files left


def test_predict_csv_with_bad_file(model_dir: Path, photos: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_text("not a picture")
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((200, 200, 3), 128, dtype=np.uint8)).save(grey)
    missing = tmp_path / "missing.jpg"
    code, out, err = _run(
        [
            "predict",
            str(photos / "astronaut.png"),
            str(bad),
            str(grey),
            str(missing),
            "--model",
            str(model_dir),
            "--format",
            "csv",
            "--quiet",
        ],
        capsys,
    )
    assert code == 1
    _no_traceback(err)
    assert err.strip().splitlines()[-1].startswith("4 files: 1 with an estimate, 1 without a face, 0 with every")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(Path(r["path"]).name, r["file_status"]) for r in rows] == [
        ("astronaut.png", "ok"),
        ("broken.jpg", "error"),
        ("grey.png", "no_face"),
        ("missing.jpg", "error"),
    ]
    assert float(rows[0]["age"]) > 0 and rows[0]["gender"] in ("male", "female") and rows[0]["box"]
    assert "not a readable image" in rows[1]["message"] and "file not found" in rows[3]["message"]


def test_predict_table_and_no_inputs(model_dir: Path, photos: Path, tmp_path: Path, capsys) -> None:
    code, out, err = _run(["predict", str(photos), "--model", str(model_dir), "--quiet"], capsys)
    assert code == 0 and "astronaut.png" in out and "mirrored.png" in out
    code, out, err = _run(["predict", "--model", str(model_dir)], capsys)
    assert code == 2 and err.startswith("error: no input images")
    nested = tmp_path / "nested"
    (nested / "sub").mkdir(parents=True)
    (nested / "sub" / "a.png").write_bytes((photos / "astronaut.png").read_bytes())
    code, out, err = _run(["predict", str(nested), "--model", str(model_dir), "--quiet"], capsys)
    assert code == 2 and f"no input images in {nested}, only in sub-folders: add --recursive" in err
    code, out, err = _run(["predict", str(nested), "-r", "--model", str(model_dir), "--quiet"], capsys)
    assert code == 0 and "a.png" in out
    (tmp_path / "hollow" / "sub").mkdir(parents=True)  # sub-folders without images: no --recursive hint
    code, out, err = _run(["predict", str(tmp_path / "hollow"), "--model", str(model_dir), "--quiet"], capsys)
    assert code == 2 and "--recursive" not in err and "no input images in" in err


@pytest.fixture(scope="module")
def tiny_face(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The astronaut shrunk so her face is ~30 px wide: found, but below MIN_FACE_SIZE (40 px)."""
    image = Image.fromarray(astronaut())
    small = image.resize((image.width // 3, image.height // 3), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (400, 400), (200, 200, 200))
    canvas.paste(small, (120, 100))
    path = tmp_path_factory.mktemp("tiny") / "tiny.png"
    canvas.save(path)
    return path


def test_small_face_is_estimated_and_flagged(model_dir: Path, tiny_face: Path, capsys) -> None:
    code, out, err = _run(["predict", str(tiny_face), "--model", str(model_dir), "--format", "json", "-q"], capsys)
    assert code == 0, err
    face = json.loads(out)[0]["faces"][0]
    assert face["status"] == "low_quality" and face["reasons"] == ["small"] and face["age"] is not None
    assert 0 < face["quality"] < 1
    code, out, err = _run(["predict", str(tiny_face), "--model", str(model_dir), "-q"], capsys)
    assert code == 0 and "low quality: small" in out


def test_min_face_skips_with_no_estimate(model_dir: Path, tiny_face: Path, photos: Path, capsys) -> None:
    args = ["predict", str(tiny_face), str(photos / "astronaut.png"), "--model", str(model_dir), "-q"]
    code, out, err = _run([*args, "--format", "csv", "--min-face", "40"], capsys)
    assert code == 1  # the tiny photo has no estimate left
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["file_status"], r["status"]) for r in rows] == [("skipped", "skipped"), ("ok", "ok")]
    assert rows[0]["age"] == "" and rows[0]["gender"] == "" and rows[0]["reasons"] == "small"
    assert "below min_face 40" in rows[0]["message"]
    assert err.strip().splitlines()[-1].endswith("faces: 1 ok, 0 low quality, 1 skipped")
    # min_quality 1: only faces with nothing flagged are estimated.
    code, out, err = _run([*args, "--format", "json", "--min-quality", "1"], capsys)
    assert [r["faces"][0]["status"] for r in json.loads(out)] == ["skipped", "ok"]


@pytest.mark.parametrize("option, value", [("--min-quality", "2"), ("--min-face", "-1"), ("--min-face", "big")])
def test_invalid_filter_option_is_a_usage_error(model_dir: Path, photos: Path, option: str, value: str, capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", str(photos), "--model", str(model_dir), option, value])
    assert info.value.code == 2
    assert option.lstrip("-").replace("-", "_") in capsys.readouterr().err


def _competition(root: Path, ids: list[str], missing: set[str]) -> None:
    x1, y1, x2, y2 = FACE
    crop = astronaut()[y1 - 30 : y2 + 25, x1 - 35 : x2 + 35]
    (root / "images").mkdir(parents=True)
    for k, i in enumerate(ids):
        if i not in missing:
            Image.fromarray(np.ascontiguousarray(crop if k % 2 else crop[:, ::-1])).save(root / "images" / f"{i}.jpg")
    (root / "test.csv").write_text("id\n" + "\n".join(ids) + "\n")


def test_predict_competition(model_dir: Path, tmp_path: Path, capsys) -> None:
    ids = ["b12", "007", "a3", "010", "zz"]  # not sorted, with zero-padded ids that must survive as text
    root = tmp_path / "comp"
    _competition(root, ids, missing=set())
    code, out, err = _run(
        ["predict", "--competition", str(root), "--model", str(model_dir), "--no-detect", "--quiet"], capsys
    )
    assert code == 0, err
    sub = root / "submission.csv"
    assert f"wrote {sub} (5 rows)" in out
    rows = list(csv.DictReader(io.StringIO(sub.read_text())))
    assert list(rows[0]) == ["id", "age", "gender"]
    assert [r["id"] for r in rows] == ids
    assert all(0 <= float(r["age"]) <= 100 and r["gender"] in ("0", "1") for r in rows)
    assert sorted(p.name for p in root.iterdir()) == ["images", "submission.csv", "test.csv"]


def test_predict_competition_missing_image(model_dir: Path, tmp_path: Path, capsys) -> None:
    ids = ["3", "1", "2"]
    root = tmp_path / "comp"
    _competition(root, ids, missing={"1"})
    out_file = tmp_path / "elsewhere" / "sub.csv"
    code, out, err = _run(
        [
            "predict",
            "--competition",
            str(root),
            "--model",
            str(model_dir),
            "--no-detect",
            "-o",
            str(out_file),
            "--quiet",
        ],
        capsys,
    )
    assert code == 1
    _no_traceback(err)
    assert "1 unreadable" in err
    rows = list(csv.reader(io.StringIO(out_file.read_text())))
    assert [r[0] for r in rows[1:]] == ids  # every row written, the failed one too, in input order
    assert float(rows[2][1]) == FALLBACK_AGE and rows[2][2] == "0"


def test_predict_competition_without_test_csv(model_dir: Path, tmp_path: Path, capsys) -> None:
    code, out, err = _run(["predict", "--competition", str(tmp_path), "--model", str(model_dir)], capsys)
    assert code == 2
    assert err.startswith("error:") and "test.csv" in err
    _no_traceback(err)


def test_benchmark_speed(model_dir: Path, tmp_path: Path, capsys) -> None:
    threads = torch.get_num_threads()
    out_json = tmp_path / "speed.json"
    try:
        code, out, err = _run(
            [
                "benchmark",
                "speed",
                "--model",
                str(model_dir),
                "--repeats",
                "1",
                "--batch-size",
                "4",
                "--threads",
                "1",
                "--output",
                str(out_json),
            ],
            capsys,
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    result = json.loads(out_json.read_text())
    assert result["machine"]["cpu_count"] == os.cpu_count()
    assert result["batch_size"] == 4 and result["repeats"] == 1
    assert set(result["backends"]) == {"torch", "onnx"}
    for b in result["backends"].values():
        assert b["input_size"] == 64
        assert b["faces_per_s_batched"] > 0 and b["single_face_latency_ms"] > 0 and b["photos_per_s_end_to_end"] > 0
    md = out_json.with_suffix(".md").read_text()
    assert f"Speed on {os.cpu_count()} CPU cores" in md
    assert "| torch |" in md and "| onnx |" in md
    assert not (model_dir / "model.onnx").exists()  # the benchmark does not write into the model folder


@pytest.mark.parametrize("where", ["under_a_file", "a_folder"])
def test_predict_refuses_an_unwritable_output_before_predicting(
    where: str, model_dir: Path, photos: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It used to run every prediction, then die with a traceback and exit 1, with nothing saved.
    import agegender.inference.batch as batch

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    target = a_file / "out.csv" if where == "under_a_file" else tmp_path
    monkeypatch.setattr(batch, "run_predictions", lambda *a, **k: pytest.fail("predicted before checking -o"))
    code, out, err = _run(["predict", str(photos), "--model", str(model_dir), "-o", str(target), "-q"], capsys)
    assert code == 2
    assert err.startswith(f"error: cannot write {target}: ") and len(err.strip().splitlines()) == 1


def test_predict_keeps_the_results_when_the_final_write_fails(
    model_dir: Path, photos: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agegender.utils.io as io_utils

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    target = a_file / "out.csv"
    monkeypatch.setattr(io_utils, "ensure_writable", lambda path, kind="file": Path(path))  # it breaks later
    code, out, err = _run(
        ["predict", str(photos), "--model", str(model_dir), "--format", "csv", "-o", str(target), "-q"], capsys
    )
    assert code == 3
    _no_traceback(err)
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: could not write {target} (") and "the results were kept in " in last
    kept = Path(last.rsplit("the results were kept in ", 1)[1])
    rows = list(csv.DictReader(io.StringIO(kept.read_text())))
    assert [Path(r["path"]).name for r in rows] == ["astronaut.png", "mirrored.png"]
    assert "wrote" not in out


def test_predict_says_which_files_a_folder_skips(model_dir: Path, photos: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "astronaut.png").write_bytes((photos / "astronaut.png").read_bytes())
    (folder / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (folder / "IMG_0002.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    code, out, err = _run(["predict", str(folder), "--model", str(model_dir), "-q"], capsys)
    assert code == 0
    assert f"note: {folder}: 2 files skipped, not read as images" in err
    assert "2 x skipped_heic: IMG_0001.HEIC, IMG_0002.heic (HEIC/HEIF is not supported" in err
    assert err.strip().splitlines()[-1].startswith("1 files: 1 with an estimate")


def test_a_missing_detector_model_is_a_user_error(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("AGEGENDER_YUNET_MODEL", raising=False)
    astronaut = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"
    code, _, err = _run(["predict", "--detector", "yunet", str(astronaut), "-q"], capsys)
    assert code == 2
    assert err.strip().startswith("error: YuNet face detector model") and "Traceback" not in err


def test_detector_options_on_the_command_line(capsys) -> None:
    """``--detector NAME:key=value`` reaches the detector; an option it does not take is a one-line user error."""
    astronaut = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"
    code, out, _ = _run(["predict", "--detector", "haar:min_face_size=40", str(astronaut), "-q"], capsys)
    assert code == 0 and " ok" in out
    code, out, _ = _run(["predict", "--detector", "haar:min_face_size=400", str(astronaut), "-q"], capsys)
    assert code == 1 and "no_face" in out  # the face (~90 px) is under the minimum the spec set
    code, _, err = _run(["predict", "--detector", "mtcnn:no_such=1", str(astronaut), "-q"], capsys)
    assert code == 2
    assert err.strip() == (
        "error: face detector 'mtcnn' has no option no_such; it takes: min_face_size, score_threshold, "
        "stage_thresholds, scale_factor, num_threads, max_side, second_pass, min_face_ratio, spin, "
        "small_photo_share, landmark_vote"
    )


@pytest.mark.parametrize(("name", "first"), [("out.json", "["), ("out.csv", "path,id,file_status")])
def test_output_format_follows_the_file_extension(name: str, first: str, tmp_path: Path, capsys) -> None:
    astronaut = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"
    out = tmp_path / name
    code, _, _ = _run(["predict", str(astronaut), "-o", str(out), "-q"], capsys)
    assert code == 0 and out.read_text().startswith(first)


def test_a_format_that_contradicts_the_extension_is_refused(tmp_path: Path, capsys) -> None:
    astronaut = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"
    code, _, err = _run(["predict", str(astronaut), "-o", str(tmp_path / "o.json"), "--format", "csv"], capsys)
    assert code == 2 and "--format csv contradicts --output" in err
    assert not (tmp_path / "o.json").exists()


def test_draw_writes_annotated_images(tmp_path: Path, capsys) -> None:
    from PIL import Image

    astronaut = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    code, _, err = _run(["predict", str(astronaut), str(broken), "--draw", str(tmp_path / "drawn"), "-q"], capsys)
    assert code == 1  # the broken file has no estimate; the good one is still drawn
    assert "wrote 1 annotated images" in err
    drawn = Image.open(tmp_path / "drawn" / "astronaut.jpg")
    original = Image.open(astronaut)
    assert drawn.size == original.size
    assert (np.asarray(drawn, dtype=int) - np.asarray(original.convert("RGB"), dtype=int)).any()


def test_workers_one_gives_the_same_answers(model_dir: Path, photos: Path, tmp_path: Path, capsys) -> None:
    """Photos searched one after another (``--workers 1``) and two at once (the default) read alike."""
    outputs = []
    for extra in ([], ["--workers", "1"]):
        out_file = tmp_path / f"out{len(extra)}.json"
        code, _, err = _run(
            ["predict", str(photos), "--model", str(model_dir), "-o", str(out_file), "--quiet", *extra], capsys
        )
        assert code == 0, err
        outputs.append(json.loads(out_file.read_text()))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 2
    with pytest.raises(SystemExit) as info:
        main(["predict", str(photos), "--model", str(model_dir), "--workers", "0"])
    assert info.value.code == 2 and "--workers: must be a whole number >= 1" in capsys.readouterr().err
