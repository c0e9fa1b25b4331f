"""Training curves as a picture: ``<run>/curves.png`` after every epoch, one chart per metric with the
training and validation lines together, so a person sees over- or under-fitting at a glance."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

#: (chart title, training metric, validation metric)
CHARTS = (
    ("loss", "train/loss_epoch", "val/loss"),
    ("age MAE (years)", "train/mae", "val/mae"),
    ("gender accuracy", "train/acc", "val/acc"),
)


class CurvesPlot(L.Callback):
    """Collects each epoch's figures and redraws ``path``; its history survives ``--resume``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.history: dict[str, dict[int, float]] = {}

    def _take(self, trainer: L.Trainer, epoch: int, prefix: str) -> None:
        for name, value in trainer.callback_metrics.items():
            if name.startswith(prefix):
                self.history.setdefault(name, {})[epoch] = float(value)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._take(trainer, trainer.current_epoch + 1, "val/")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:  # the module logs its training figures at the very end of an epoch
            self._take(trainer, trainer.current_epoch, "train/")
            self.draw()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take(trainer, trainer.current_epoch, "train/")
        self.draw()

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = {k: {int(e): v for e, v in d.items()} for k, d in state_dict.get("history", {}).items()}

    @rank_zero_only
    def draw(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        charts = [c for c in CHARTS if c[1] in self.history or c[2] in self.history]
        if not charts:
            return
        fig, axes = plt.subplots(1, len(charts), figsize=(4.2 * len(charts), 3.4), squeeze=False)
        for ax, (title, train, val) in zip(axes[0], charts, strict=True):
            for key, label, style in ((train, "train", "-o"), (val, "validation", "-s")):
                points = sorted(self.history.get(key, {}).items())
                if points:
                    ax.plot([e for e, _ in points], [v for _, v in points], style, label=label, markersize=4)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        tmp.replace(self.path)
