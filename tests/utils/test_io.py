"""Output checks before the work, and results kept elsewhere when the destination fails at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

from agegender.errors import EXIT_OUTPUT_NOT_WRITTEN, AgeGenderError
from agegender.utils.io import (
    OutputError,
    OutputNotWrittenError,
    ensure_writable,
    raise_if_unsaved,
    write_text_output,
)


def test_writable_places_pass_and_leave_nothing_behind(tmp_path: Path):
    assert ensure_writable(tmp_path / "out.csv") == tmp_path / "out.csv"
    ensure_writable(tmp_path / "new" / "deeper" / "out.csv")  # folders that do not exist yet
    ensure_writable(tmp_path / "report", kind="dir")
    (tmp_path / "old.csv").write_text("keep")
    ensure_writable(tmp_path / "old.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]
    assert (tmp_path / "old.csv").read_text() == "keep"


def test_unwritable_places_are_refused_with_the_reason(tmp_path: Path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        (tmp_path, "file", "it is a folder, but a file name is expected"),
        (a_file / "out.csv", "file", f"{a_file} is a file, not a folder"),
        (a_file / "sub" / "out.csv", "file", f"{a_file} is a file, not a folder"),
        (a_file, "dir", "it is a file, but a folder is expected"),
    ]
    if Path("/proc").is_dir():  # a place nobody can create files in, root included (chmod would not stop root)
        cases.append((Path("/proc/agegender-test.csv"), "file", "/proc is not writable"))
    for path, kind, reason in cases:
        with pytest.raises(OutputError) as e:
            ensure_writable(path, kind=kind)
        assert reason in str(e.value) and isinstance(e.value, AgeGenderError)


def test_failed_write_keeps_the_results_elsewhere(tmp_path: Path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    saved = write_text_output(a_file / "out.csv", "id,age\n1,30\n")
    assert saved.error and saved.path is not None and saved.path.name == "out.csv"
    assert saved.path.read_text() == "id,age\n1,30\n"
    with pytest.raises(OutputNotWrittenError) as e:
        raise_if_unsaved([write_text_output(tmp_path / "fine.csv", "ok"), saved])
    assert str(saved.path) in str(e.value) and str(a_file / "out.csv") in str(e.value)
    assert e.value.exit_code == EXIT_OUTPUT_NOT_WRITTEN
    assert (tmp_path / "fine.csv").read_text() == "ok"


def test_a_link_is_written_through_and_stays_a_link(tmp_path: Path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "r.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    assert ensure_writable(link) == link
    saved = write_text_output(link, "new\n")
    assert saved.error is None
    assert link.is_symlink() and target.read_text() == "new\n"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["r.csv"]  # no temporary file left


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_device_is_written_to_not_replaced_and_a_full_one_keeps_the_results(tmp_path: Path):
    full = Path("/dev/full")  # every write fails with "No space left on device"
    assert ensure_writable(full) == full
    saved = write_text_output(full, "rows\n")
    assert full.is_char_device()  # still the device, not a regular file renamed over it
    assert saved.path is not None and saved.path != full and saved.path.read_text() == "rows\n"
    assert "No space left" in (saved.error or "")
    null = write_text_output("/dev/null", "rows\n")
    assert null.error is None and Path("/dev/null").is_char_device()
