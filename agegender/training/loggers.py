"""Experiment loggers: Lightning's CSV logger plus a local, offline TrackIO logger."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.utilities import rank_zero_only

from agegender.errors import ConfigError

log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@contextlib.contextmanager
def _trackio_prints() -> Iterator[None]:
    """trackio prints set-up lines, one in colour, and a ``trackio show`` hint that lacks the TRACKIO_DIR it needs:
    keep them, plain, in the debug log; the run ends with a hint that works (see ``train.fit``)."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            yield
    finally:
        for line in _ANSI.sub("", out.getvalue()).splitlines():
            if line.strip():
                log.debug("trackio: %s", line)


class TrackioLogger(Logger):
    """Logs metrics to TrackIO's local store (``$TRACKIO_DIR``, default ``<run>/trackio``); no account."""

    def __init__(self, project: str, name: str, save_dir: str | Path) -> None:
        super().__init__()
        self._project, self._name, self._save_dir = project, name, str(save_dir)
        self._run = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return "0"

    @property
    def save_dir(self) -> str:
        return self._save_dir

    def _trackio(self):
        os.environ.setdefault("TRACKIO_DIR", self._save_dir)
        import trackio

        return trackio

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        if self._run is None:
            cfg = vars(params) if isinstance(params, Namespace) else dict(params)
            with _trackio_prints():
                self._run = self._trackio().init(
                    project=self._project,
                    name=self._name,
                    config=_flatten(cfg),
                    embed=False,
                    auto_log_cpu=False,
                    auto_log_gpu=False,
                )

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self._run is None:
            self.log_hyperparams({})
        self._trackio().log({k: float(v) for k, v in metrics.items()}, step=step)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._run is not None:
            with _trackio_prints():
                self._trackio().finish()
            self._run = None


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v if isinstance(v, int | float | str | bool) or v is None else str(v)
    return out


LOGGERS = ("csv", "trackio")


def build_loggers(names: list[str], out_dir: Path, run_name: str) -> list[Logger]:
    loggers: list[Logger] = []
    for n in names:
        if n == "csv":
            loggers.append(CSVLogger(str(out_dir), name="logs", version=""))
        elif n == "trackio":
            loggers.append(TrackioLogger("agegender", run_name, out_dir / "trackio"))
        else:
            raise ConfigError(f"unknown logger {n!r}: choose from {', '.join(LOGGERS)}")
    return loggers
