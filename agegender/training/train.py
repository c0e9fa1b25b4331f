"""``agegender train``: fit a recipe with Lightning, keep the best checkpoint, write a model folder."""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from agegender.data.readers import require_labels
from agegender.models.checkpoint import check_checkpoint
from agegender.models.folder import load_init_weights, save_model_folder
from agegender.training.clock import TrainClock
from agegender.training.config import Recipe, RecipeError
from agegender.training.curves import CurvesPlot
from agegender.training.datamodule import AgeGenderDataModule
from agegender.training.interrupt import SaveOnInterrupt
from agegender.training.loggers import build_loggers
from agegender.training.module import AgeGenderModule
from agegender.training.progress import ProgressBar
from agegender.utils.io import ensure_writable

log = logging.getLogger(__name__)


def resolve_precision(precision: str, accelerator: str) -> str:
    if precision != "auto":
        return precision
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "16-mixed" if on_gpu else "32-true"


def _module_from(recipe: Recipe) -> AgeGenderModule:
    d = recipe.to_dict()
    alpha = recipe.distill.alpha if recipe.distill.teachers else 0.0
    if recipe.model.init:  # fine-tuning: the init weights replace any pretrained backbone, so skip loading it
        d["model"]["pretrained"] = False
    module = AgeGenderModule(d["model"], d["loss"], d["optim"], d["train"], distill_alpha=alpha)
    if recipe.model.init:
        load_init_weights(module.net, recipe.model.init)
    return module


def last_checkpoint(out_dir: Path) -> Path | None:
    p = out_dir / "checkpoints" / "last.ckpt"
    return p if p.is_file() else None


@rank_zero_only
def _keep_previous_metrics(log_dir: Path) -> None:
    """Lightning's CSV logger deletes an existing metrics.csv: on resume keep it as metrics.partN.csv."""
    old = log_dir / "metrics.csv"
    if old.is_file():
        n = 1
        while (log_dir / f"metrics.part{n}.csv").exists():
            n += 1
        old.rename(log_dir / f"metrics.part{n}.csv")


#: Lightning start-up lines that say nothing about this run (hardware it does not use, adverts).
_BANNERS = ("GPU available", "TPU available", "HPU available", "💡 Tip", "Tip:")


class _BannerFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).lstrip().startswith(_BANNERS)


def _quiet_lightning_banners() -> None:
    """Drop Lightning's banners from the run's output; its useful lines (restored checkpoint, DDP set-up) stay."""
    # Validation figures come from torchmetrics, already synced across DDP ranks: Lightning's advice does not apply.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\('val/")
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _BannerFilter) for f in logger.filters):
        logger.addFilter(_BannerFilter())


def fit(recipe: Recipe, resume: bool = False) -> dict:
    """Train ``recipe``; with ``resume`` continue from ``<output_dir>/checkpoints/last.ckpt``.

    Returns a summary with the best checkpoint, its validation score and the model folder written.
    """
    tc = recipe.train
    if recipe.data.train_on_val and tc.early_stopping:
        raise RecipeError("data.train_on_val trains on the validation split, so it cannot also stop early on it")
    sources = recipe.data.source_list()
    if not sources:
        raise RecipeError("no training data: give --data PATH (or data.path=PATH, or data.sources)")
    out_dir = ensure_writable(recipe.output_dir, kind="dir")
    for src in sources:  # fail on a missing label column now, not after reading the other datasets
        require_labels(src.path, src.format)
    for teacher in recipe.distill.teachers:  # and on a missing teacher, before reading any image
        t = Path(teacher)
        if not ((t / "config.json").is_file() or (t.suffix == ".ckpt" and t.is_file())):
            raise RecipeError(f"distill.teachers: {teacher} is neither a model folder (with config.json) nor a .ckpt")
    out_dir.mkdir(parents=True, exist_ok=True)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    L.seed_everything(tc.seed, workers=True, verbose=False)
    ckpt_path = last_checkpoint(out_dir) if resume else None
    if resume and ckpt_path is None:
        log.warning("--resume: no checkpoint in %s, starting from scratch", out_dir / "checkpoints")
    if ckpt_path is not None:
        check_checkpoint(ckpt_path)
        _keep_previous_metrics(out_dir / "logs")
    (out_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))

    module = _module_from(recipe)
    net = module.net
    dm = AgeGenderDataModule(
        recipe.data,
        net.input_size,
        net.mean,
        net.std,
        out_dir / "split.json",
        tc.progress,
        recipe.distill,
        recipe.model.num_bins,
        recipe.loss.sigma,
    )
    ckpt_dir = out_dir / "checkpoints"
    best_cb = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best-{epoch:02d}", monitor="val/score", mode="max", save_top_k=1, save_last=False
    )
    # A separate "last" checkpoint every N steps and at each epoch end, so a killed run resumes mid-epoch.
    # Lightning makes step and epoch triggers mutually exclusive in one callback: two callbacks, one file.
    last_cb = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        every_n_train_steps=tc.checkpoint_every_n_steps,
        save_top_k=1,
        enable_version_counter=False,
    )
    epoch_last_cb = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        every_n_epochs=1,
        save_top_k=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    loggers = build_loggers(tc.loggers, out_dir, recipe.name)
    on_interrupt = SaveOnInterrupt(ckpt_dir / "last.ckpt")
    clock = TrainClock()
    callbacks = [best_cb, last_cb, epoch_last_cb, CurvesPlot(out_dir / "curves.png"), on_interrupt, clock]
    if loggers:  # LearningRateMonitor refuses to run without a logger (train.loggers=[])
        callbacks.append(LearningRateMonitor("epoch"))
    if tc.progress:
        callbacks.append(ProgressBar(refresh_rate=10))
    if tc.early_stopping:
        callbacks.append(EarlyStopping("val/score", mode="max", patience=tc.early_stopping))
    _quiet_lightning_banners()
    log.info("%s: %.2f M trainable parameters", recipe.name, module.n_trainable / 1e6)
    trainer = L.Trainer(
        max_epochs=tc.epochs,
        accelerator=tc.accelerator,
        devices=tc.devices,
        num_nodes=tc.num_nodes,
        strategy=tc.strategy,
        precision=resolve_precision(tc.precision, tc.accelerator),
        callbacks=callbacks,
        logger=loggers or False,
        default_root_dir=str(out_dir),
        enable_progress_bar=tc.progress,
        enable_model_summary=False,  # its table ends in "Total FLOPs: 0" on CPU; the parameter count is logged above
        limit_train_batches=tc.limit_train_batches,
        limit_val_batches=tc.limit_val_batches,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        deterministic=False,
    )
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=str(ckpt_path) if ckpt_path else None)
    except (SystemExit, KeyboardInterrupt):  # Lightning ends a run stopped by SIGTERM or Ctrl-C with SystemExit
        if on_interrupt.signal is None:
            raise
        if not trainer.is_global_zero:  # rank 0 reports for all
            raise SystemExit(on_interrupt.stopped().exit_code) from None
        raise on_interrupt.stopped() from None
    summary = {
        "recipe": recipe.name,
        "output_dir": str(out_dir),
        "epochs_completed": trainer.current_epoch,
        "global_step": trainer.global_step,
        "best_checkpoint": best_cb.best_model_path or None,
        "best_val_score": float(best_cb.best_model_score) if best_cb.best_model_score is not None else None,
        "train_seconds": round(clock.seconds, 1),  # every run of a resumed training together
        "trainable_parameters": module.n_trainable,
    }
    if trainer.is_global_zero:
        refit = recipe.data.train_on_val  # val was trained on: its "best" epoch means nothing
        best = (
            AgeGenderModule.load_from_checkpoint(best_cb.best_model_path, map_location="cpu")
            if best_cb.best_model_path and not refit
            else module
        )
        folder = save_model_folder(
            best.net.cpu(),
            out_dir / "model",
            {
                "training": {
                    "recipe": recipe.to_dict(),
                    "best_val_score": None if refit else summary["best_val_score"],
                    "split_file": "split.json",
                },
            },
        )
        summary["model_folder"] = str(folder)
        summary["model_weights"] = "last epoch (data.train_on_val)" if refit else "best checkpoint"
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        log.info("training curves: %s", out_dir / "curves.png")
        if "trackio" in tc.loggers:  # the dashboard command, exactly as it must be typed for this run
            where = Path(os.environ.get("TRACKIO_DIR") or out_dir / "trackio").resolve()  # the logger's choice
            log.info("dashboard: TRACKIO_DIR=%s trackio show --project agegender", where)
    return summary
