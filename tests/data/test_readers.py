"""Dataset readers: every layout, format detection, bad inputs counted/reported/excluded, duplicates, strict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from agegender.data import images as images_mod
from agegender.data.readers import detect_format, parse_utkface_name, read_dataset, read_images
from agegender.data.records import DataError, Reading

MakeJpeg = Callable[..., Path]


def _names(reading: Reading) -> set[str]:
    return {r.path.name for r in reading.records}


def _problem_counts(reading: Reading) -> dict[str, int]:
    return {k: len(v) for k, v in reading.report.problems.items()}


# ---------------------------------------------------------------- UTKFace


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("25_0_2_20170116174525125.jpg.chip.jpg", (25, 0, 2)),
        ("1_1_4_20161221193718765.jpg.chip.jpg", (1, 1, 4)),
        ("39_1_20170116174525125.jpg.chip.jpg", (39, 1, None)),  # no race field
        ("61_1_20170109142408075.jpg.chip.jpg", (61, 1, None)),
        ("55_0_0_20170116232725357jpg.chip.jpg", (55, 0, 0)),  # missing dot before "jpg"
        ("30_1_2_20170116174525999 .jpg.chip.jpg", (30, 1, 2)),  # space before ".jpg"
        ("25_0_2_20170116174525125.jpg", (25, 0, 2)),  # without the ".chip.jpg" tail
    ],
)
def test_parse_utkface_name(name: str, expected: tuple[int, int, int | None]) -> None:
    assert parse_utkface_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "not_a_utkface_name.jpg",
        "25_0_2.jpg",
        "x_0_2_20170116174525125.jpg.chip.jpg",
        "25_0_2_2017.jpg.chip.jpg",
        "25_0_2_20170116174525125.png",
    ],
)
def test_parse_utkface_name_rejects(name: str) -> None:
    assert parse_utkface_name(name) is None


def test_utkface_records_and_labels(tiny_utkface) -> None:
    reading = read_dataset(tiny_utkface.root)
    assert reading.report.format == "utkface"
    assert len(reading.records) == tiny_utkface.usable_first
    by_name = {r.path.name: r for r in reading.records}
    first = tiny_utkface.regular[0]  # "1_0_0_..."
    assert (by_name[first].age, by_name[first].gender, by_name[first].race) == (1.0, 0, 0)
    for name, (age, gender, race) in tiny_utkface.irregular.items():
        assert (by_name[name].age, by_name[name].gender, by_name[name].race) == (age, gender, race)
    assert all(r.labelled and r.digest for r in reading.records)
    assert "README.txt" not in by_name


def test_utkface_bad_files_counted_reported_excluded(tiny_utkface) -> None:
    reading = read_dataset(tiny_utkface.root)
    problems = reading.report.problems
    for kind, name in tiny_utkface.bad.items():
        assert len(problems[kind]) == 1, kind
        assert Path(problems[kind][0]).name == name, kind
        assert name not in _names(reading)
    assert _problem_counts(reading) == {**dict.fromkeys(tiny_utkface.bad, 1), "conflicting_duplicate_labels": 1}
    total_files = len(tiny_utkface.regular) + len(tiny_utkface.irregular) + 4 + len(tiny_utkface.bad)
    assert reading.report.rows == total_files
    summary = reading.report.summary()
    assert "excluded 1 x empty_image" in summary
    assert tiny_utkface.bad["undecodable_image"] in summary
    as_dict = reading.report.to_dict()
    assert as_dict["problems"]["age_over_120"] == {"count": 1, "examples": [tiny_utkface.bad["age_over_120"]]}


def test_utkface_irregular_names_are_notes(tiny_utkface) -> None:
    reading = read_dataset(tiny_utkface.root)
    assert sorted(reading.report.notes["irregular_name"]) == sorted(tiny_utkface.irregular)
    assert "irregular_name" not in reading.report.problems
    assert "note 3 x irregular_name" in reading.report.summary()


def test_utkface_in_images_subfolder(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    for i, age in enumerate((3, 30, 70)):
        make_jpeg(tmp_path / "images" / f"{age}_{i % 2}_1_2017010100000{i}.jpg.chip.jpg", seed=i)
    reading = read_dataset(tmp_path)
    assert reading.report.format == "utkface"
    assert sorted(r.age for r in reading.records) == [3.0, 30.0, 70.0]


# ---------------------------------------------------------------- duplicates


def test_duplicates_first_keeps_one_agreeing_copy_and_drops_conflicts(tiny_utkface) -> None:
    reading = read_dataset(tiny_utkface.root, duplicates="first")
    names = _names(reading)
    a, b = tiny_utkface.same_label_dups
    assert len({a, b} & names) == 1
    assert not set(tiny_utkface.conflicting_dups) & names
    assert len(reading.report.notes["duplicate_copy_dropped"]) == 1
    conflict = reading.report.problems["conflicting_duplicate_labels"]
    assert len(conflict) == 1 and all(n in conflict[0] for n in tiny_utkface.conflicting_dups)
    groups = sorted(sorted(r.path.name for r in g) for g in reading.duplicate_groups)
    assert groups == sorted([sorted(tiny_utkface.same_label_dups), sorted(tiny_utkface.conflicting_dups)])


def test_duplicates_keep_keeps_all(tiny_utkface) -> None:
    reading = read_dataset(tiny_utkface.root, duplicates="keep")
    names = _names(reading)
    assert len(reading.records) == tiny_utkface.usable_keep
    assert set(tiny_utkface.same_label_dups) <= names and set(tiny_utkface.conflicting_dups) <= names
    assert len(reading.duplicate_groups) == 2
    assert "conflicting_duplicate_labels" not in reading.report.problems


def test_duplicates_unknown_policy(tiny_utkface) -> None:
    with pytest.raises(DataError, match="duplicates policy"):
        read_dataset(tiny_utkface.root, duplicates="newest")


def test_same_file_listed_twice_keeps_one_copy(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    """A manifest naming one file twice must keep one copy, not drop both (they share one path)."""
    make_jpeg(tmp_path / "a.jpg", seed=1)
    make_jpeg(tmp_path / "b.jpg", seed=2)
    (tmp_path / "m.csv").write_text("path,age,gender\na.jpg,20,0\na.jpg,20,0\nb.jpg,30,1\n")
    reading = read_dataset(tmp_path / "m.csv")
    assert sorted(r.path.name for r in reading.records) == ["a.jpg", "b.jpg"]


# ---------------------------------------------------------------- strict mode


def test_strict_raises_with_clear_message(tiny_utkface) -> None:
    with pytest.raises(DataError) as err:
        read_dataset(tiny_utkface.root, strict=True)
    message = str(err.value)
    assert "strict" in message
    for kind, name in tiny_utkface.bad.items():
        assert kind in message and name in message


def test_strict_accepts_clean_data_with_notes(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    make_jpeg(tmp_path / "25_0_1_20170101000000001.jpg.chip.jpg", seed=1)
    make_jpeg(tmp_path / "39_1_20170116174525125.jpg.chip.jpg", seed=2)  # irregular: a note, not a problem
    reading = read_dataset(tmp_path, strict=True)
    assert len(reading.records) == 2
    assert reading.report.n_problems == 0
    assert "no problems found" in reading.report.summary()


# ---------------------------------------------------------------- competition layout


@pytest.fixture
def competition(tmp_path: Path, make_jpeg: MakeJpeg) -> Path:
    root = tmp_path / "comp"
    for i in range(1, 8):
        make_jpeg(root / "images" / f"{i}.jpg", seed=100 + i)
    (root / "images" / "6.jpg").write_bytes(b"")  # empty
    (root / "images" / "7.jpg").write_bytes(b"\x00garbage" * 40)  # undecodable
    (root / "train.csv").write_text(
        "id,age,gender\n"
        "1,25,0\n"  # id without extension
        "2.jpg,31.5,1\n"  # id with extension
        "3,,0\n"  # age NaN
        "4,-3,1\n"  # negative age
        "5,121,0\n"  # age > 120
        "1,40,1\n"  # duplicate id
        "99,30,0\n"  # missing file
        "6,20,0\n"  # empty file
        "7,20,1\n"  # undecodable
        "3.jpg,50,2\n"  # gender not 0/1 (another id for file 3)
    )
    (root / "test.csv").write_text("id\n1\n2\n3\n4\n")
    return root


def test_competition_train_by_id(competition: Path) -> None:
    reading = read_dataset(competition)
    assert reading.report.format == "competition"
    assert sorted((r.id, r.path.name, r.age, r.gender) for r in reading.records) == [
        ("1", "1.jpg", 25.0, 0),
        ("2.jpg", "2.jpg", 31.5, 1),
    ]
    assert _problem_counts(reading) == {
        "age_missing": 1,
        "age_negative": 1,
        "age_over_120": 1,
        "duplicate_id": 1,
        "missing_file": 1,
        "empty_image": 1,
        "undecodable_image": 1,
        "gender_not_0_or_1": 1,
    }
    problems = reading.report.problems
    assert problems["duplicate_id"] == ["1"]
    assert problems["missing_file"] == ["99"]
    assert problems["age_missing"] == ["3"]
    assert Path(problems["empty_image"][0]).name == "6.jpg"
    assert reading.report.rows == 10


def test_competition_test_csv_is_unlabelled(competition: Path) -> None:
    reading = read_dataset(competition, split="test")
    assert sorted(r.id for r in reading.records) == ["1", "2", "3", "4"]
    assert all(r.age is None and r.gender is None and not r.labelled for r in reading.records)
    assert reading.report.n_problems == 0


def test_competition_by_full_path(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    make_jpeg(tmp_path / "images" / "00" / "a.jpg", seed=1)
    make_jpeg(tmp_path / "images" / "01" / "b.jpg", seed=2)
    (tmp_path / "train.csv").write_text(
        "full_path,age,gender\nimages/00/a.jpg,18,1\n01/b.jpg,64,0\nimages/02/c.jpg,40,0\n"
    )
    reading = read_dataset(tmp_path, format="competition")
    assert sorted((r.path.name, r.age, r.gender) for r in reading.records) == [("a.jpg", 18.0, 1), ("b.jpg", 64.0, 0)]
    assert reading.report.problems["missing_file"] == ["images/02/c.jpg"]


def test_competition_missing_csv_or_columns(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    make_jpeg(tmp_path / "images" / "1.jpg", seed=1)
    (tmp_path / "test.csv").write_text("id\n1\n")
    with pytest.raises(DataError, match="train.csv"):
        read_dataset(tmp_path, split="train")
    (tmp_path / "train.csv").write_text("id,age\n1,20\n")
    with pytest.raises(DataError, match="gender"):
        read_dataset(tmp_path)
    (tmp_path / "train.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_dataset(tmp_path)


# ---------------------------------------------------------------- CSV manifest


def test_manifest_relative_to_csv(tmp_path: Path, make_jpeg: MakeJpeg, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    make_jpeg(data / "faces" / "a.jpg", seed=1)
    make_jpeg(data / "faces" / "b.png.jpg", seed=2)
    absolute = make_jpeg(tmp_path / "elsewhere" / "c.jpg", seed=3)
    rows = ["path,age,gender,race", "faces/a.jpg,7,1,3", "faces/b.png.jpg,88,0,", f"{absolute},30,0,1"]
    (data / "list.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path / "elsewhere")  # paths are relative to the CSV, not to the working directory
    reading = read_dataset(data / "list.csv")
    assert reading.report.format == "manifest"
    got = sorted((r.path.name, r.age, r.gender, r.race) for r in reading.records)
    assert got == [("a.jpg", 7.0, 1, 3), ("b.png.jpg", 88.0, 0, None), ("c.jpg", 30.0, 0, 1)]
    assert reading.report.n_problems == 0


def test_manifest_bad_rows(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    for i in range(9):
        make_jpeg(tmp_path / f"{i}.jpg", seed=200 + i)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(np.random.default_rng(5).bytes(300))
    (tmp_path / "m.csv").write_text(
        "path,age,gender\n"
        "0.jpg,20,0\n"
        "1.jpg,,1\n"
        "2.jpg,-1,0\n"
        "3.jpg,120.5,1\n"
        "4.jpg,30,2\n"
        "5.jpg,30,M\n"
        "6.jpg,abc,1\n"
        "gone.jpg,30,1\n"
        "empty.jpg,30,1\n"
        "junk.jpg,30,0\n"
        "7.jpg,120,1\n"
        "8.jpg,30,\n"
        "0.jpg,20,0\n"
    )
    reading = read_dataset(tmp_path / "m.csv")
    assert sorted(r.path.name for r in reading.records) == ["0.jpg", "7.jpg"]
    assert reading.report.problems["gender_missing"] == ["8.jpg"]
    assert reading.report.notes["listed_twice_dropped"] == ["0.jpg (the same file on two rows)"]
    problems = reading.report.problems
    assert problems["age_missing"] == ["1.jpg"]
    assert problems["age_negative"] == ["2.jpg"]
    assert problems["age_over_120"] == ["3.jpg"]
    assert sorted(problems["gender_not_0_or_1"]) == ["4.jpg", "5.jpg"]
    assert problems["age_not_a_number"] == ["6.jpg"]
    assert problems["missing_file"] == ["gone.jpg"]
    assert [Path(p).name for p in problems["empty_image"]] == ["empty.jpg"]
    assert [Path(p).name for p in problems["undecodable_image"]] == ["junk.jpg"]
    assert reading.report.rows == 13


def test_manifest_duplicate_ids(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    make_jpeg(tmp_path / "a.jpg", seed=1)
    make_jpeg(tmp_path / "b.jpg", seed=2)
    (tmp_path / "m.csv").write_text("id,path,age,gender\nx,a.jpg,20,0\nx,b.jpg,30,1\n")
    reading = read_dataset(tmp_path / "m.csv")
    assert [r.path.name for r in reading.records] == ["a.jpg"]
    assert reading.report.problems["duplicate_id"] == ["x"]


def test_manifest_bad_race_does_not_crash(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    make_jpeg(tmp_path / "a.jpg", seed=1)
    make_jpeg(tmp_path / "b.jpg", seed=2)
    (tmp_path / "m.csv").write_text("path,age,gender,race\na.jpg,20,0,unknown\nb.jpg,30,1,2\n")
    reading = read_dataset(tmp_path / "m.csv")
    assert sorted((r.path.name, r.race) for r in reading.records) == [("a.jpg", None), ("b.jpg", 2)]
    assert reading.report.notes["race_invalid"] == ["a.jpg"]


def test_manifest_without_labels_and_without_path(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    make_jpeg(tmp_path / "a.jpg", seed=1)
    (tmp_path / "paths.csv").write_text("path\na.jpg\n")
    reading = read_dataset(tmp_path / "paths.csv")
    assert len(reading.records) == 1 and not reading.records[0].labelled
    (tmp_path / "nopath.csv").write_text("file,age,gender\na.jpg,1,1\n")
    with pytest.raises(DataError, match="'path' column"):
        read_dataset(tmp_path / "nopath.csv")


# ---------------------------------------------------------------- plain images


def test_plain_folder(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    make_jpeg(tmp_path / "holiday.jpg", seed=1)
    make_jpeg(tmp_path / "sub" / "IMG_0001.JPG", seed=2)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "notes.txt").write_text("x")
    reading = read_dataset(tmp_path)
    assert reading.report.format == "images"
    assert sorted(r.path.name for r in reading.records) == ["IMG_0001.JPG", "holiday.jpg"]
    assert all(not r.labelled for r in reading.records)
    assert [Path(p).name for p in reading.report.problems["undecodable_image"]] == ["broken.png"]


def test_single_image_and_list_of_images(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    a = make_jpeg(tmp_path / "a.jpg", seed=1)
    b = make_jpeg(tmp_path / "d" / "b.jpg", seed=2)
    make_jpeg(tmp_path / "d" / "deeper" / "c.jpg", seed=3)
    reading = read_dataset(a)
    assert reading.report.format == "images" and [r.path for r in reading.records] == [a]
    recs = read_images([a, tmp_path / "d"])
    assert [r.path.name for r in recs] == ["a.jpg", "b.jpg", "c.jpg"]
    assert [r.path for r in read_images([b.parent], recursive=False)] == [b]


def test_nothing_usable_or_nonexistent(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_dataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable images"):
        read_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="unknown format"):
        read_dataset(tmp_path / "empty", format="imagenet")


# ---------------------------------------------------------------- detection


def test_detect_format(tmp_path: Path, make_jpeg: MakeJpeg, tiny_utkface) -> None:
    assert detect_format(tiny_utkface.root) == "utkface"
    comp = tmp_path / "comp"
    make_jpeg(comp / "images" / "1.jpg", seed=1)
    (comp / "test.csv").write_text("id\n1\n")
    assert detect_format(comp) == "competition"
    (comp / "train.csv").write_text("id,age,gender\n1,2,0\n")
    assert detect_format(comp) == "competition"
    assert detect_format(comp / "train.csv") == "manifest"
    assert detect_format(comp / "images") == "images"
    assert detect_format(comp / "images" / "1.jpg") == "images"
    with pytest.raises(DataError):
        detect_format(tmp_path / "nope")


# ---------------------------------------------------------------- decompression bombs


def test_oversized_image_refused(tmp_path: Path, make_jpeg: MakeJpeg, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images_mod, "MAX_PIXELS", 1000)  # 20x16 = 320 pixels pass, 64x64 = 4096 do not
    make_jpeg(tmp_path / "small.jpg", seed=1)
    make_jpeg(tmp_path / "bomb.jpg", seed=2, size=(64, 64))
    reading = read_dataset(tmp_path)
    assert [r.path.name for r in reading.records] == ["small.jpg"]
    assert [Path(p).name for p in reading.report.problems["image_too_large"]] == ["bomb.jpg"]
    with pytest.raises(images_mod.ImageError, match="too large"):
        images_mod.decode_image((tmp_path / "bomb.jpg").read_bytes(), "bomb.jpg")


def test_check_images_off_skips_decoding(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    make_jpeg(tmp_path / "good.jpg", seed=1)
    (tmp_path / "junk.jpg").write_bytes(b"junk" * 50)
    (tmp_path / "empty.jpg").write_bytes(b"")
    reading = read_dataset(tmp_path, check_images=False)
    assert sorted(r.path.name for r in reading.records) == ["good.jpg", "junk.jpg"]
    assert list(reading.report.problems) == ["empty_image"]


# ---------------------------------------------------------------- what folder reads skip, labels that cannot exist


def test_folder_reads_report_the_files_they_skip(tmp_path: Path, make_jpeg: MakeJpeg, tiny_utkface) -> None:
    # Files with other extensions (an iPhone's .heic) used to be left out without a word.
    make_jpeg(tmp_path / "a.jpg", seed=1)
    for name in ("IMG_1.HEIC", "sub/IMG_2.heif", "shot.jxl", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    report = read_dataset(tmp_path).report
    assert report.notes["skipped_heic"] == ["IMG_1.HEIC", "sub/IMG_2.heif"]
    assert report.notes["skipped_jpeg_xl"] == ["shot.jxl"] and report.notes["skipped_other_file"] == ["notes.txt"]
    summary = report.summary()
    assert "note 2 x skipped_heic: IMG_1.HEIC, sub/IMG_2.heif (HEIC/HEIF is not supported" in summary
    assert report.to_dict()["notes"]["skipped_heic"]["hint"].endswith("convert to JPEG or PNG")
    utk = read_dataset(tiny_utkface.root).report  # the UTKFace reader lists its folder the same way
    assert utk.notes["skipped_other_file"] == ["README.txt"]


@pytest.mark.skipif(".avif" not in images_mod.IMAGE_EXTENSIONS, reason="this Pillow has no AVIF support")
def test_avif_is_read_where_pillow_supports_it(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.full((16, 16, 3), 90, dtype=np.uint8)).save(tmp_path / "a.avif")
    reading = read_dataset(tmp_path)
    assert [r.path.name for r in reading.records] == ["a.avif"] and not reading.report.notes


def test_require_labels_names_what_is_missing(tmp_path: Path, make_jpeg: MakeJpeg) -> None:
    from agegender.data.readers import require_labels

    make_jpeg(tmp_path / "a.jpg", seed=1)
    (tmp_path / "both.csv").write_text("path,age,gender\na.jpg,3,1\n")
    require_labels(tmp_path / "both.csv")
    (tmp_path / "none.csv").write_text("path,id\na.jpg,1\n")
    with pytest.raises(DataError, match=r"no 'age' and 'gender' column \(columns found: path, id\)"):
        require_labels(tmp_path / "none.csv")
    with pytest.raises(DataError, match="read as a plain image folder, which has no labels"):
        require_labels(tmp_path)
    report = read_dataset(tmp_path / "none.csv").report  # inspect still reads it, with a note
    assert report.notes["missing_label_column"] == ["age and gender"]


def test_a_folder_with_too_few_utkface_names_to_be_detected_says_how_to_read_them(
    tmp_path: Path, make_jpeg: MakeJpeg
) -> None:
    from agegender.data.readers import require_labels

    for i, name in enumerate(["25_0_1_20170112213500903.jpg.chip.jpg", "30_1_0_20170112213500904.jpg.chip.jpg"]):
        make_jpeg(tmp_path / name, i)
    for i in range(2):
        make_jpeg(tmp_path / f"holiday{i}.jpg", 10 + i)  # 2 of 4 names: under the 80% that auto-detection needs
    reading = read_dataset(tmp_path)
    assert reading.report.format == "images" and not any(r.labelled for r in reading.records)
    hint = "2 of 4 file names here are UTKFace names: --format utkface reads them labelled"
    assert hint in reading.report.summary()
    with pytest.raises(DataError, match=hint):
        require_labels(tmp_path, "auto")
    assert sum(r.labelled for r in read_dataset(tmp_path, "utkface").records) == 2


def test_a_manifest_with_a_header_only_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("path,age,gender\n")
    with pytest.raises(DataError) as err:
        read_dataset(tmp_path / "m.csv")
    assert str(err.value) == f"{tmp_path / 'm.csv'}: the CSV has a header but no rows"
