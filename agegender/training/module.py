"""LightningModule: multi-task training step, validation metrics, optimiser and schedule."""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.classification import BinaryAccuracy, MulticlassF1Score

from agegender.errors import ConfigError
from agegender.evaluation.metrics import age_score, harmonic_mean
from agegender.models.losses import AgeGenderLoss
from agegender.models.model import ModelConfig, build_model
from agegender.training.config import LossConfig, OptimConfig, TrainConfig
from agegender.training.distill import blend_targets
from agegender.training.freeze import HEAD_MODULES, apply_trainable, freeze_batchnorm_stats
from agegender.training.mixing import mix_batch


class AgeGenderModule(L.LightningModule):
    def __init__(self, model: dict, loss: dict, optim: dict, train: dict, distill_alpha: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_cfg = ModelConfig(**model)
        self.loss_cfg, self.optim_cfg, self.train_cfg = LossConfig(**loss), OptimConfig(**optim), TrainConfig(**train)
        self.net = build_model(self.model_cfg)
        if self.train_cfg.channels_last:  # ~8x faster convolutions on CPU than NCHW here (see benchmarks)
            self.net = self.net.to(memory_format=torch.channels_last)
        self.n_trainable = apply_trainable(self.net, self.train_cfg.trainable)
        lc = self.loss_cfg
        self.criterion = AgeGenderLoss(
            self.model_cfg.age_head,
            self.model_cfg.gender_head,
            lc.age_loss,
            lc.sigma,
            self.model_cfg.num_bins,
            lc.weighting,
            lc.age_weight,
            lc.gender_weight,
        )
        self.distill_alpha = distill_alpha
        self._rng = np.random.default_rng(self.train_cfg.seed)
        self.train_mae, self.train_acc = MeanAbsoluteError(), BinaryAccuracy()
        self.val_overall = _val_metrics()

    # Frozen BatchNorm layers keep their running statistics even while the rest trains.
    def train(self, mode: bool = True):
        super().train(mode)
        if mode and "all" not in self.train_cfg.trainable:
            freeze_batchnorm_stats(self.net)
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning never calls .train() itself (validation restores the modes it captured), so a fresh module
        # would train with every BatchNorm in training mode: apply the override here.
        self.train()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(x)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.train_cfg.channels_last else x

    def _mix_mode(self) -> str | None:
        mode = self.train_cfg.mix
        if mode == "none" or self._rng.random() >= self.train_cfg.mix_prob:
            return None
        return str(self._rng.choice(["mixup", "cutmix"])) if mode == "both" else mode

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, age, gender, *soft = batch
        age, gender_f = age.float(), gender.float()
        age_dist = None
        if self.model_cfg.age_head == "distribution":
            age_dist = self.criterion.age_target_distribution(age)
        t_age, t_gender, t_dist = age, gender_f, age_dist
        if soft:  # distillation: the teachers' (age distribution, P(female)) for these faces
            t_age, t_dist, t_gender = blend_targets(age, age_dist, gender_f, *soft, self.distill_alpha)
        mode = self._mix_mode()
        if mode:
            x, t_age, t_gender, t_dist, _ = mix_batch(
                x, t_age, t_gender, t_dist, mode, self.train_cfg.mix_alpha, self._rng
            )
        out = self.net(self._prep(x))
        loss, parts = self.criterion(out, t_age, t_gender, t_dist)
        with torch.no_grad():
            pred_age, _, p_female = self.net.decode(out)
            self.train_mae.update(pred_age, age)
            self.train_acc.update(p_female, gender)
        bs = x.shape[0]
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=bs, sync_dist=True)
        # Logged as metric objects, not computed in on_train_epoch_end: Lightning then syncs every epoch figure
        # in one order on all ranks. A collective of our own there ran while rank 0's progress bar was
        # already syncing the logged figures, and DDP hung after the first epoch.
        self.log("train/mae", self.train_mae, on_step=False, on_epoch=True, batch_size=bs)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=bs)
        self.log_dict(
            {f"train/{k}": v for k, v in parts.items()}, on_step=False, on_epoch=True, batch_size=bs, sync_dist=True
        )
        return loss

    def setup(self, stage: str) -> None:
        # Several training sources: validation figures per source too (created here, before Lightning moves
        # the module to its device, so torchmetrics syncs them across DDP ranks like the overall ones).
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        names = list(getattr(dm, "source_names", []) or [])
        if len(names) > 1 and not hasattr(self, "val_by_source"):
            self.source_names = names
            self.val_by_source = nn.ModuleList(_val_metrics() for _ in names)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, age, gender, *rest = batch
        out = self.net(self._prep(x))
        loss, _ = self.criterion(out, age.float(), gender.float())
        pred_age, _, p_female = self.net.decode(out)
        _update(self.val_overall, pred_age, age, p_female, gender)
        if rest and hasattr(self, "val_by_source"):
            for i, metrics in enumerate(self.val_by_source):
                mask = rest[0] == i
                if mask.any():
                    _update(metrics, pred_age[mask], age[mask], p_female[mask], gender[mask])
        self.log("val/loss", loss, on_epoch=True, batch_size=x.shape[0], sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        metrics = _compute(self.val_overall, "val")
        for i, per_source in enumerate(getattr(self, "val_by_source", [])):
            if per_source["mae"].update_count:  # update_count is per rank; a source can be absent
                metrics.update(_compute(per_source, f"val/{self.source_names[i]}"))
        self.log_dict(metrics, prog_bar=False)
        self._last_val = metrics

    def on_train_epoch_end(self) -> None:
        done = self.trainer.callback_metrics  # this epoch's figures, synced across ranks (and reset) by Lightning
        mae, acc = float(done.get("train/mae", math.nan)), float(done.get("train/acc", math.nan))
        v = getattr(self, "_last_val", None)
        val = ""
        if v:
            val = (
                f" | val acc {v['val/acc']:.4f} MAE {v['val/mae']:.3f} RMSE {v['val/rmse']:.3f} "
                f"score {v['val/score']:.4f}"
            )
            for name in getattr(self, "source_names", []):
                if f"val/{name}/mae" in v:
                    val += f" | {name} acc {v[f'val/{name}/acc']:.4f} MAE {v[f'val/{name}/mae']:.3f}"
        lr = self.trainer.optimizers[0].param_groups[-1]["lr"]
        self.print(
            f"Epoch {self.current_epoch + 1}/{self.trainer.max_epochs} | train acc {acc:.4f} "
            f"MAE {mae:.3f}{val} | lr {lr:.2e}"
        )

    def configure_optimizers(self):
        oc = self.optim_cfg
        backbone = [p for p in self.net.backbone.parameters() if p.requires_grad]
        heads = [p for n, p in self.net.named_parameters() if p.requires_grad and n.split(".")[0] in HEAD_MODULES]
        heads += list(self.criterion.parameters())
        groups = [
            g
            for g in (
                {"params": backbone, "lr": oc.lr * oc.backbone_lr_mult},
                {"params": heads, "lr": oc.lr},
            )
            if g["params"]
        ]
        opt = torch.optim.AdamW(groups, lr=oc.lr, weight_decay=oc.weight_decay)
        if oc.scheduler == "none":
            return opt
        if oc.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=oc.plateau_factor, patience=oc.plateau_patience
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss"}}
        if oc.scheduler != "cosine":
            raise ConfigError(f"scheduler must be cosine, plateau or none, got {oc.scheduler!r}")
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = int(total * oc.warmup_epochs / max(1, self.trainer.max_epochs))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = (step - warm) / max(1, total - warm)
            return oc.min_lr_ratio + (1 - oc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _val_metrics() -> MetricCollection:
    return MetricCollection(
        {
            "mae": MeanAbsoluteError(),
            "rmse": MeanSquaredError(squared=False),
            "acc": BinaryAccuracy(),
            "f1": MulticlassF1Score(2, average="macro"),
        },
        compute_groups=False,
    )


def _update(m: MetricCollection, pred_age, age, p_female, gender) -> None:
    m["mae"].update(pred_age, age.float())
    m["rmse"].update(pred_age, age.float())
    m["acc"].update(p_female, gender)
    m["f1"].update((p_female >= 0.5).long(), gender)


def _compute(m: MetricCollection, prefix: str) -> dict[str, float]:
    """MAE, RMSE, accuracy, macro F1 and the competition score, then reset for the next epoch."""
    values = {k: float(v) for k, v in m.compute().items()}
    m.reset()
    values["score"] = harmonic_mean(values["f1"], age_score(values["rmse"]))
    return {f"{prefix}/{k}": v for k, v in values.items()}
