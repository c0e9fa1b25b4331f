"""LightningDataModule: read, validate and split a dataset once, then serve train/val/test loaders."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from agegender.data.dataset import FaceDataset
from agegender.data.readers import read_dataset
from agegender.data.records import DataError, FaceRecord
from agegender.data.splits import split_records
from agegender.data.transforms import build_eval_transform, build_train_transform
from agegender.training.config import DataConfig, DistillConfig


class AgeGenderDataModule(L.LightningDataModule):
    def __init__(
        self,
        cfg: DataConfig,
        input_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        split_file: Path | None = None,
        progress: bool = True,
        distill: DistillConfig | None = None,
        num_bins: int = 101,
        sigma: float = 2.0,
    ) -> None:
        super().__init__()
        if not cfg.path:
            raise DataError("no training data: set data.path (e.g. --data ../shared/data/utkface)")
        self.cfg, self.size, self.mean, self.std = cfg, input_size, mean, std
        self.split_file = Path(cfg.split_file) if cfg.split_file else split_file
        self.progress = progress
        self.distill, self.num_bins, self.sigma = distill, num_bins, sigma
        self.splits: dict[str, list[FaceRecord]] = {}
        self.datasets: dict[str, FaceDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        reading = read_dataset(
            self.cfg.path,
            self.cfg.format,
            strict=self.cfg.strict,
            duplicates=self.cfg.duplicates,
            progress=self.progress,
        )
        if self.progress and self.trainer is not None and self.trainer.is_global_zero:
            print(reading.report.summary())
        labelled = [r for r in reading.records if r.labelled]
        if not labelled:
            raise DataError(f"{self.cfg.path}: no labelled images to train on")
        self.splits = split_records(labelled, self.split_file, self.cfg.fractions)
        if self.cfg.limit:
            self.splits = {k: v[: self.cfg.limit] for k, v in self.splits.items()}
        for name in ("train", "val"):
            if not self.splits[name]:
                raise DataError(f"the {name} split is empty: {len(labelled)} labelled images are too few")
        if self.cfg.train_on_val:
            self.splits["train"] = self.splits["train"] + self.splits["val"]
        cache = self.size if self.cfg.cache else None
        train_tf = build_train_transform(self.size, self.mean, self.std, self.cfg.augment)
        eval_tf = build_eval_transform(self.size, self.mean, self.std)
        for name, recs in self.splits.items():
            if recs:
                tf = train_tf if name == "train" else eval_tf
                self.datasets[name] = FaceDataset(recs, tf, cache_size=cache, progress=self.progress)
        if self.distill is not None and self.distill.teachers:
            self._attach_teacher_targets(self.datasets["train"])

    def _attach_teacher_targets(self, ds: FaceDataset) -> None:
        from agegender.training.distill import teacher_targets

        if self.progress:
            print(f"distillation: soft targets from {len(self.distill.teachers)} teacher(s) on {len(ds)} faces")
        soft = teacher_targets(
            self.distill.teachers,
            ds.records,
            self.num_bins,
            self.sigma,
            self.distill.tta,
            self.cfg.eval_batch_size,
            self.progress,
            images=ds.cached_images,
        )
        ds.extra_targets = (soft.age_dist, soft.p_female)

    def _loader(self, name: str, train: bool) -> DataLoader:
        workers = self.cfg.num_workers
        return DataLoader(
            self.datasets[name],
            batch_size=self.cfg.batch_size if train else self.cfg.eval_batch_size,
            shuffle=train,
            drop_last=train and len(self.datasets[name]) > self.cfg.batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        if "test" not in self.datasets:
            raise DataError("the test split is empty")
        return self._loader("test", False)
