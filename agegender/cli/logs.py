"""Where the library's log records go when it runs as the ``agegender`` command.

Library modules only log (``logging.getLogger(__name__)``); the command decides what is shown: INFO and up
by default (notes such as "using a fresh split" are INFO), WARNING and up with ``--quiet``, everything with
``--verbose``. Only the ``agegender`` logger is configured, so other libraries keep their own defaults.
"""

from __future__ import annotations

import logging
import sys

PLAIN = "%(message)s"
DETAILED = "%(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (pytest's capture, a redirected stream)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler's constructor assigns it; sys.stderr is always used
        pass


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    """One handler on the ``agegender`` logger (replaced, not added, when called again in one process)."""
    logger = logging.getLogger("agegender")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(DETAILED if verbose else PLAIN))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
