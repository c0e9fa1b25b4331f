"""Label CSVs: each way a CSV is written otherwise gets one error that says how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from agegender.data.records import DataError
from agegender.data.tables import read_table


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"path;age;gender\na.jpg;30;1\n", "separated by ';', not commas"),
        ("path,age,gender\ncafé.jpg,30,1\n".encode("latin-1"), "not UTF-8 text"),
        (b"path,age,gender\na.jpg,30,1,extra\n", "more fields than the header"),
    ],
)
def test_a_csv_written_otherwise_says_how_to_fix_it(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "m.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(tmp_path / "m.csv")
    with pytest.raises(DataError, match="no such file"):
        read_table(tmp_path / "none.csv")
