"""Lightning's progress bars, minus the escape codes when the output is a file or a pipe, not a terminal."""

from __future__ import annotations

import sys

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm


class ProgressBar(TQDMProgressBar):
    """The epoch bar always; the validation bar only on a terminal.

    The validation bar sits on a second line, and tqdm moves the cursor there and back with ANSI codes
    (``ESC[A``) that litter a log file. The epoch bar stays on one line and writes plain text.
    """

    def init_validation_tqdm(self) -> Tqdm:
        if sys.stdout.isatty():
            return super().init_validation_tqdm()
        return Tqdm(disable=True)
