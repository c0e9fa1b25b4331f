"""``agegender evaluate``: what was excluded is said, missing label columns are named, outputs are checked first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agegender.cli.main import main
from agegender.models.folder import save_model_folder
from agegender.models.model import ModelConfig, build_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model_folder(
        build_model(ModelConfig(backbone="scratch_cnn", input_size=32)), tmp_path_factory.mktemp("ev") / "model"
    )


@pytest.fixture
def mixed_csv(tmp_path: Path, make_jpeg) -> Path:
    """6 usable rows and 3 that must be excluded (bad age, bad gender, missing file)."""
    rows = ["path,age,gender"]
    for i in range(6):
        make_jpeg(tmp_path / f"{i}.jpg", i)
        rows.append(f"{i}.jpg,{20 + 5 * i},{i % 2}")
    make_jpeg(tmp_path / "x.jpg", 10)
    rows += ["x.jpg,old,1", "x.jpg,30,7", "gone.jpg,30,1"]
    (tmp_path / "mixed.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "mixed.csv"


def test_evaluate_says_what_was_excluded(model_dir: Path, mixed_csv: Path, tmp_path: Path, capsys) -> None:
    out_json = tmp_path / "m.json"
    args = ["evaluate", str(model_dir), "--data", str(mixed_csv), "--split", "all", "--output", str(out_json)]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.startswith("n=6 ") and json.loads(out_json.read_text())["overall"]["n"] == 6
    assert "note: 3 of 9 rows were excluded:" in err
    for kind in ("age_not_a_number", "gender_not_0_or_1", "missing_file"):
        assert f"excluded 1 x {kind}" in err


def test_evaluate_names_the_missing_label_column(model_dir: Path, tmp_path: Path, make_jpeg, capsys) -> None:
    make_jpeg(tmp_path / "a.jpg", 1)
    (tmp_path / "m.csv").write_text("path,age\na.jpg,30\n")
    assert main(["evaluate", str(model_dir), "--data", str(tmp_path / "m.csv"), "--split", "all"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'm.csv'}: no labelled images: the manifest has no 'gender' column")
    assert "(columns found: path, age)" in err


@pytest.mark.parametrize("option", ["--output", "--report"])
def test_evaluate_checks_outputs_before_the_work(
    option: str, model_dir: Path, mixed_csv: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agegender.evaluation.evaluate as evaluate

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    target = a_file / "out" if option == "--output" else a_file  # --report wants a folder
    monkeypatch.setattr(evaluate, "load_net", lambda *a: pytest.fail("evaluated before checking the outputs"))
    assert main(["evaluate", str(model_dir), "--data", str(mixed_csv), option, str(target)]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot write {'into ' if option == '--report' else ''}{target}")


def test_evaluate_keeps_the_report_when_its_folder_fails_at_the_end(
    model_dir: Path, mixed_csv: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agegender.utils.io as io_utils

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    monkeypatch.setattr(io_utils, "ensure_writable", lambda path, kind="file": Path(path))
    args = ["evaluate", str(model_dir), "--data", str(mixed_csv), "--split", "all"]
    assert main([*args, "--report", str(a_file / "report"), "--output", str(tmp_path / "m.json")]) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    kept = Path(err.rsplit("the results were kept in ", 1)[1])
    assert (kept / "REPORT.md").is_file() and (tmp_path / "m.json").is_file()  # the other output is written


def test_evaluate_several_datasets_gives_figures_per_dataset(model_dir: Path, tmp_path: Path, make_jpeg, capsys):
    for name, offset in (("first", 0), ("second", 100)):
        folder = tmp_path / name
        rows = ["path,age,gender"]
        for i in range(5):
            make_jpeg(folder / f"{i}.jpg", offset + i)
            rows.append(f"{i}.jpg,{20 + i},{i % 2}")
        (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    out_json = tmp_path / "m.json"
    args = ["evaluate", str(model_dir), "--data", str(tmp_path / "first"), "--data", str(tmp_path / "second")]
    assert main([*args, "--split", "all", "--output", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert result["overall"]["n"] == 10
    assert {k: v["n"] for k, v in result["slices"]["source"].items()} == {"first": 5, "second": 5}
    assert "by source:" in capsys.readouterr().out


@pytest.fixture
def photo_csv(tmp_path: Path, make_astronaut_photos) -> Path:
    """Three labelled photos end to end: the astronaut, her mirror image, and a grey frame with no face."""
    make_astronaut_photos(tmp_path)
    (tmp_path / "photos.csv").write_text("path,age,gender\nastronaut.png,30,1\nmirrored.png,30,1\ngrey.png,40,0\n")
    return tmp_path / "photos.csv"


def test_evaluate_photos_end_to_end_and_into_the_card(model_dir: Path, photo_csv: Path, tmp_path: Path, capsys):
    import shutil

    from agegender.evaluation.card import write_card

    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    write_card(folder)
    out_json = tmp_path / "photos.json"
    args = ["evaluate", str(folder), "--photos", "--data", str(photo_csv), "--split", "all"]
    assert main([*args, "--output", str(out_json), "--write"]) == 0
    out = capsys.readouterr().out
    assert "2/3 photos with an estimate" in out and "mean signed error by age band" in out
    result = json.loads(out_json.read_text())
    assert result["photos"] == 3 and result["estimated"] == 2
    assert [m["reason"] for m in result["without_estimate"]] == ["no face found"]
    stored = json.loads((folder / "metrics_photos.json").read_text())
    (entry,) = stored.values()
    assert entry["estimated"] == 2 and entry["overall"]["n"] == 2 and entry["bands"]["30-39"]["n"] == 2
    assert entry["detector"] == result["detector"] == "blazeface"  # the default detector, named in the figures
    card = (folder / "MODEL_CARD.md").read_text()
    assert "## End to end on photos" in card and "| blazeface | 2 / 3 |" in card


def test_evaluate_photos_refuses_what_it_cannot_do(model_dir: Path, photo_csv: Path, capsys) -> None:
    base = ["evaluate", str(model_dir), "--data", str(photo_csv)]
    assert main([*base, "--write"]) == 2
    assert "--write applies to --photos" in capsys.readouterr().err
    assert main([*base, "--photos", "--split", "test"]) == 2  # no split file beside a bare model folder
    assert "--split test needs a split file" in capsys.readouterr().err
    assert main([*base, "--photos", "--data", str(photo_csv), "--split", "all"]) == 2
    assert "--photos takes one --data" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["top", "sub"])
def test_quiet_evaluate_draws_no_progress_bars(model_dir: Path, mixed_csv: Path, capsys, where: str) -> None:
    """``agegender -q evaluate`` and ``agegender evaluate -q`` both keep stderr free of progress bars."""
    args = ["evaluate", str(model_dir), "--data", str(mixed_csv), "--split", "all"]
    args = ["-q", *args] if where == "top" else [*args, "-q"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "it/s" not in err and "predicting" not in err and "note: 3 of 9 rows were excluded:" in err


def test_a_closed_pipe_loses_no_output_and_prints_no_traceback(model_dir: Path, mixed_csv: Path, tmp_path: Path):
    """``agegender evaluate ... | head -1``: the reader is gone before anything is printed."""
    import os
    import subprocess
    import sys

    out_json = tmp_path / "m.json"
    cmd = [sys.executable, "-m", "agegender.cli.main", "evaluate", str(model_dir), "--data", str(mixed_csv)]
    cmd += ["--split", "all", "--output", str(out_json), "-q"]
    env = dict(os.environ, AGEGENDER_DEBUG="")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # as `head` does once it has its line; here before the first one
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert json.loads(out_json.read_text())["overall"]["n"] == 6


def test_a_split_file_that_does_not_exist_is_an_error_not_a_fresh_split(
    model_dir: Path, mixed_csv: Path, tmp_path: Path, capsys
) -> None:
    typo = tmp_path / "splti.json"
    args = ["evaluate", str(model_dir), "--data", str(mixed_csv), "--split", "val", "--split-file", str(typo)]
    assert main(args) == 2
    assert f"split file {typo} does not exist" in capsys.readouterr().err
    assert not typo.exists()  # nothing written under the mistyped name
    typo.write_text('{"train": [], "val": [], "test": []}')
    assert main(args) == 2
    assert "not a valid split file: it has no 'assignment' entry" in capsys.readouterr().err


def test_too_small_a_split_names_the_way_out_and_data_given_twice_is_refused(
    model_dir: Path, mixed_csv: Path, capsys
) -> None:
    assert main(["evaluate", str(model_dir), "--data", str(mixed_csv), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "is empty (6 labelled images in all); --split all evaluates on every image" in err
    twice = [
        "evaluate",
        str(model_dir),
        "--data",
        str(mixed_csv),
        "--data",
        str(mixed_csv.parent / ".." / mixed_csv.parent.name / mixed_csv.name),
    ]
    assert main([*twice, "--split", "all"]) == 2
    assert "the same data is given twice" in capsys.readouterr().err
