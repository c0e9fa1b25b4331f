"""Training time that survives ``--resume``: the seconds spent so far travel in the checkpoints."""

from __future__ import annotations

import time
from typing import Any

import lightning as L

__all__ = ["TrainClock"]


class TrainClock(L.Callback):
    """Wall-clock seconds of ``fit`` across runs: a resumed run adds its time to what its checkpoint recorded,
    so ``summary.json``'s ``train_seconds`` (and the seconds per epoch of the candidates table) cover every epoch,
    not only those after the last resume."""

    def __init__(self) -> None:
        self.before = 0.0
        self._start: float | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    @property
    def seconds(self) -> float:
        return self.before + (time.monotonic() - self._start if self._start is not None else 0.0)

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.before = float(state_dict.get("seconds", 0.0))
