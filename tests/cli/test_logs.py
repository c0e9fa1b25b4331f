"""Library log records reach the terminal through the CLI's handler: INFO by default, less or more on request."""

from __future__ import annotations

import logging

import pytest

from agegender.cli.logs import setup_logging
from agegender.cli.main import build_parser, main


@pytest.fixture(autouse=True)
def _restore_logger():
    logger = logging.getLogger("agegender")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def _emit() -> None:
    log = logging.getLogger("agegender.evaluation.evaluate")
    log.debug("debug detail")
    log.info("note: using a fresh split")
    log.warning("something odd")


@pytest.mark.parametrize(
    ("flags", "shown", "hidden"),
    [
        ({}, ["note: using a fresh split", "something odd"], ["debug detail"]),
        ({"quiet": True}, ["something odd"], ["note:", "debug detail"]),
        ({"verbose": True}, ["DEBUG agegender.evaluation.evaluate: debug detail", "INFO"], []),
    ],
)
def test_levels(capsys, flags, shown, hidden) -> None:
    setup_logging(**flags)
    setup_logging(**flags)  # a second call (main() run twice in one process) must not print twice
    _emit()
    err = capsys.readouterr().err
    assert all(err.count(s) == 1 for s in shown), err
    assert not any(s in err for s in hidden), err


def test_global_options_reach_the_subcommand(tmp_path, capsys) -> None:
    args = build_parser().parse_args(["--quiet", "data", "align", "photos", "--output", "chips"])
    assert args.log_quiet and not args.quiet  # main() then also turns the progress bar off
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--quiet", "--verbose", "data", "inspect", "x"])
    assert main(["-q", "data", "inspect", str(tmp_path)]) in (0, 2)
    assert logging.getLogger("agegender").level == logging.WARNING
