"""Numeric options are checked while parsing, for every subcommand, with a message saying what is allowed."""

from __future__ import annotations

import argparse

import pytest

from agegender.cli.argtypes import fraction, non_negative_float, non_negative_int, port, positive_float, positive_int
from agegender.cli.main import main


@pytest.mark.parametrize(
    ("parse", "good", "bad"),
    [
        (positive_int, {"1": 1, "32": 32}, ["0", "-1", "1.5", "x", ""]),
        (non_negative_int, {"0": 0, "7": 7}, ["-1", "nan"]),
        (positive_float, {"0.5": 0.5, "3": 3.0}, ["0", "-0.1", "nan", "inf", "x"]),
        (non_negative_float, {"0": 0.0, "2.5": 2.5}, ["-1", "nan"]),
        (fraction, {"0": 0.0, "1": 1.0, "0.25": 0.25}, ["1.01", "-0.1", "nan"]),
        (port, {"0": 0, "7860": 7860, "65535": 65535}, ["65536", "-1"]),
    ],
)
def test_types_accept_their_range_only(parse, good: dict, bad: list[str]):
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"must be .*got {text!r}"):
            parse(text)


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "x.jpg", "--batch-size", "-1"],  # used to write a header-only file and exit 0
        ["predict", "x.jpg", "--batch-size", "0"],  # used to end with "range() arg 3 must not be zero"
        ["evaluate", "--data", "d", "--batch-size", "0"],
        ["train", "scratch_cnn", "--epochs", "0"],
        ["train", "scratch_cnn", "--devices", "-2"],
        ["benchmark", "speed", "--repeats", "0"],
        ["benchmark", "speed", "--batch-size", "-3"],
        ["benchmark", "speed", "--threads", "0"],
        ["serve", "--port", "70000"],
        ["serve", "--threads", "0"],
        ["serve", "--max-upload-mb", "0"],
        ["serve", "--max-pixels", "-5"],
        ["serve", "--timeout", "-1"],
        ["serve", "--concurrency", "0"],
        ["serve", "--queue-size", "-1"],
    ],
)
def test_bad_numbers_are_refused_before_any_work(argv: list[str], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}: must be" in err and f"got {argv[-1]!r}" in err and "Traceback" not in err
