"""``agegender data inspect``: histogram, problems, duplicates and split sizes, JSON output, clean errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agegender.cli.main import main


def test_inspect_tiny_utkface(tiny_utkface, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "report.json"
    assert main(["data", "inspect", str(tiny_utkface.root), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    usable = tiny_utkface.usable_first
    assert f"usable images: {usable} (labelled: {usable})" in out
    # histogram: one line per age band with a bar
    for band in ("0-12", "13-19", "20-29", "70+"):
        assert any(line.split()[:1] == [band] and "#" in line for line in out.splitlines()), band
    # problems and notes, with examples
    for kind, name in tiny_utkface.bad.items():
        assert f"excluded 1 x {kind}" in out and name in out
    assert "excluded 1 x conflicting_duplicate_labels" in out
    assert "note 3 x irregular_name" in out
    assert "duplicate groups (byte-identical files): 2 groups, 4 files" in out
    split_line = next(line for line in out.splitlines() if line.startswith("split (train/val/test): "))
    sizes = [int(v) for v in split_line.split(": ")[1].split(" / ")]
    assert sum(sizes) == usable and sizes[0] > sizes[1] and sizes[0] > sizes[2]

    info = json.loads(out_json.read_text())
    assert info["usable"] == info["labelled"] == usable
    assert sum(info["age_bands"].values()) == usable
    assert info["gender"]["male"] + info["gender"]["female"] == usable
    assert sum(info["race"].values()) == usable - 1  # one irregular name has no race
    assert list(info["split_sizes"].values()) == sizes
    assert info["duplicate_groups"] == 2 and info["duplicate_files"] == 4
    assert info["read"]["format"] == "utkface"
    assert info["read"]["problems"]["empty_image"]["count"] == 1
    assert info["read"]["notes"]["irregular_name"]["count"] == 3
    assert sorted(map(sorted, info["duplicate_examples"])) == sorted(
        [sorted(tiny_utkface.same_label_dups), sorted(tiny_utkface.conflicting_dups)]
    )


def test_inspect_split_file_reused(tiny_utkface, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    split_file = tmp_path / "split.json"
    jsons = [tmp_path / "a.json", tmp_path / "b.json"]
    for j in jsons:
        assert main(["data", "inspect", str(tiny_utkface.root), "--split-file", str(split_file), "--json", str(j)]) == 0
    capsys.readouterr()
    assert split_file.is_file()
    first, second = (json.loads(j.read_text()) for j in jsons)
    assert first["split_sizes"] == second["split_sizes"]


def test_inspect_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no_such_dataset"
    assert main(["data", "inspect", str(missing)]) == 2
    captured = capsys.readouterr()
    err_lines = captured.err.strip().splitlines()
    assert len(err_lines) == 1, captured.err
    assert err_lines[0].startswith("error: ") and str(missing) in err_lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_inspect_bad_format_option(tiny_utkface, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data", "inspect", str(tiny_utkface.root), "--format", "imagenet"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.shared
@pytest.mark.slow
def test_inspect_real_utkface(shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    utk = shared_dir / "data" / "utkface"
    if not (utk / "images").is_dir():
        pytest.skip(f"shared UTKFace folder not found at {utk}")
    out_json = tmp_path / "utk.json"
    start = time.perf_counter()
    assert main(["data", "inspect", str(utk), "--json", str(out_json)]) == 0
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"inspect took {elapsed:.1f} s"
    out = capsys.readouterr().out
    info = json.loads(out_json.read_text())
    assert info["read"]["format"] == "utkface"
    irregular = info["read"]["notes"]["irregular_name"]
    assert irregular["count"] == 4
    assert "55_0_0_20170116232725357jpg.chip.jpg" in irregular["examples"]
    assert info["duplicate_groups"] > 300
    assert info["usable"] > 20000
    assert "note 4 x irregular_name" in out


def test_inspect_json_unwritable_fails_before_reading(
    tiny_utkface, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import agegender.data.inspect as inspect

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    monkeypatch.setattr(inspect, "inspect_dataset", lambda *a: pytest.fail("read the data before checking --json"))
    assert main(["data", "inspect", str(tiny_utkface.root), "--json", str(a_file / "r.json")]) == 2
    assert capsys.readouterr().err == f"error: cannot write {a_file / 'r.json'}: {a_file} is a file, not a folder\n"


def test_inspect_names_a_missing_label_column(tmp_path: Path, make_jpeg, capsys) -> None:
    # It used to say "no problems found, labelled: 0" without a word about the missing column.
    for i in range(3):
        make_jpeg(tmp_path / f"{i}.jpg", i)
    (tmp_path / "m.csv").write_text("path,age,race\n0.jpg,30,1\n1.jpg,40,2\n2.jpg,50,0\n")
    assert main(["data", "inspect", str(tmp_path / "m.csv")]) == 0
    out = capsys.readouterr().out
    assert "note 1 x missing_label_column: gender (labels need both 'age' and 'gender' columns" in out
    assert "found: path, age, race; the images were read unlabelled)" in out
    assert "usable images: 3 (labelled: 0)" in out


def test_inspect_counts_the_files_a_folder_skips(tmp_path: Path, make_jpeg, capsys) -> None:
    make_jpeg(tmp_path / "a.jpg", 1)
    (tmp_path / "b.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (tmp_path / "c.txt").write_text("x")
    assert main(["data", "inspect", str(tmp_path), "--format", "images"]) == 0
    out = capsys.readouterr().out
    assert "note 1 x skipped_heic: b.heic (HEIC/HEIF is not supported" in out
    assert "note 1 x skipped_other_file: c.txt (not an image extension" in out
