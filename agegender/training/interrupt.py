"""Ctrl-C or SIGTERM during training: save ``last.ckpt`` and stop with a message that says how to resume.

Lightning turns SIGTERM into ``SIGTERMException`` at the next batch (on every rank) and Ctrl-C into
``KeyboardInterrupt``; both reach ``Callback.on_exception``. The checkpoint is written by rank 0 alone, without
a barrier: after Ctrl-C the other ranks may be anywhere, and waiting for them is how runs hang.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from agegender.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, AgeGenderError

log = logging.getLogger(__name__)


class TrainingStopped(AgeGenderError):
    """Training was stopped by a signal; the message names the checkpoint ``--resume`` continues from."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SaveOnInterrupt(L.Callback):
    """Writes ``path`` (the file ``--resume`` reads) when training is interrupted, and remembers how."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.signal: str | None = None  # "SIGTERM" or "Ctrl-C" once interrupted
        self.saved: Path | None = None
        self.where = ""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            self.signal = "SIGTERM"
        elif isinstance(exception, KeyboardInterrupt):
            self.signal = "Ctrl-C"
        else:
            return  # a bug or a data error: the periodic checkpoints stay, nothing half-done is saved
        self.where = f"epoch {trainer.current_epoch + 1}, step {trainer.global_step}"
        if not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
        trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, tmp)
        tmp.replace(self.path)  # a second signal during the write leaves the previous last.ckpt whole
        self.saved = self.path
        log.info("saved %s (%s)", self.path, self.where)

    def stopped(self) -> TrainingStopped:
        """The error to end the command with, once Lightning has let the interruption out."""
        code = EXIT_TERMINATED if self.signal == "SIGTERM" else EXIT_INTERRUPTED
        if self.saved is None:
            return TrainingStopped(f"training stopped by {self.signal} at {self.where}; no checkpoint saved", code)
        return TrainingStopped(
            f"training stopped by {self.signal} at {self.where}; checkpoint saved to {self.saved}. "
            "To continue, run the same command with --resume",
            code,
        )
