"""LightningDataModule: read, validate and split one or several datasets once, then serve train/val/test loaders."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from agegender.data.dataset import FaceDataset
from agegender.data.readers import check_selected_images, read_dataset
from agegender.data.records import DataError, FaceRecord
from agegender.data.splits import age_band, sample_records, split_sources
from agegender.data.transforms import build_eval_transform, build_train_transform, seed_transform
from agegender.training.config import DataConfig, DistillConfig, SourceConfig

log = logging.getLogger(__name__)


class AgeGenderDataModule(L.LightningDataModule):
    """One or several labelled datasets, each read, validated and split on its own, served as one.

    Validation and test items carry their source's index as a fourth element when there are several
    sources, so the module can report figures per source. ``split_file`` is where the full split is
    recorded (the run folder); ``cfg.split_file`` (e.g. a shipped model's split) is read first when given.
    """

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
        self.sources: list[SourceConfig] = cfg.source_list()
        if not self.sources:
            raise DataError("no training data: set data.path (e.g. --data ../shared/data/utkface) or data.sources")
        self.cfg, self.size, self.mean, self.std = cfg, input_size, mean, std
        self.split_file = split_file
        self.progress = progress
        self.distill, self.num_bins, self.sigma = distill, num_bins, sigma
        self.splits: dict[str, list[FaceRecord]] = {}
        self.source_index: dict[str, np.ndarray] = {}  # per split: each record's source number
        self.datasets: dict[str, FaceDataset] = {}

    @property
    def source_names(self) -> list[str]:
        return [s.name or "data" for s in self.sources]

    def _read_sources(self) -> dict[str, list[FaceRecord]]:
        by_source: dict[str, list[FaceRecord]] = {}
        for src in self.sources:
            reading = read_dataset(
                src.path,
                src.format,
                strict=self.cfg.strict,
                check_images=not self.cfg.limit,  # with a limit only the sample is decoded, in setup()
                duplicates=self.cfg.duplicates,
                progress=self.progress,
            )
            if self.progress and (self.trainer is None or self.trainer.is_global_zero):
                log.info(reading.report.summary())
            labelled = [r for r in reading.records if r.labelled]
            if not labelled:
                raise DataError(f"{src.path}: no labelled images to train on")
            by_source[src.name or "data"] = labelled
        return by_source

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        by_source = self._read_sources()
        read_from = Path(self.cfg.split_file) if self.cfg.split_file else self.split_file
        parts = split_sources(by_source, read_from, self.cfg.fractions, save_to=self.split_file)
        if self.cfg.split_file and not Path(self.cfg.split_file).is_file() and self.split_file is not None:
            shutil.copyfile(self.split_file, self.cfg.split_file)  # asked to write the split there too
        limit = self.cfg.limit
        for split in ("train", "val", "test"):
            recs: list[FaceRecord] = []
            idx: list[int] = []
            for i, name in enumerate(self.source_names):
                chosen = self._checked_sample(parts[name][split], limit, name) if limit else parts[name][split]
                recs += chosen
                idx += [i] * len(chosen)
            self.splits[split], self.source_index[split] = recs, np.asarray(idx, dtype=np.int64)
        for name in ("train", "val"):
            if not self.splits[name]:
                total = sum(len(v) for v in by_source.values())
                raise DataError(f"the {name} split is empty: {total} labelled images are too few")
        if self.cfg.train_on_val:
            self.splits["train"] = self.splits["train"] + self.splits["val"]
            self.source_index["train"] = np.concatenate([self.source_index["train"], self.source_index["val"]])
        cache = self.size if self.cfg.cache else None
        train_tf = build_train_transform(self.size, self.mean, self.std, self.cfg.augment)
        eval_tf = build_eval_transform(self.size, self.mean, self.std)
        for name, recs in self.splits.items():
            if recs:
                tf = train_tf if name == "train" else eval_tf
                self.datasets[name] = FaceDataset(recs, tf, cache_size=cache, progress=self.progress)
                if name != "train" and len(self.sources) > 1:
                    self.datasets[name].extra_targets = (self.source_index[name],)
        if self.distill is not None and self.distill.teachers:
            self._attach_teacher_targets(self.datasets["train"])

    def _checked_sample(self, records: list[FaceRecord], limit: int, source: str) -> list[FaceRecord]:
        """``data.limit`` records of one source's split, of which only those that decode are kept."""
        chosen, report = check_selected_images(sample_records(records, limit), source, self.progress)
        if report.n_problems:
            log.warning(report.summary())
        return chosen

    def sample_weights(self) -> np.ndarray | None:
        """Per training record: its source's share of each epoch spread over that source's records (None: none).

        With ``data.balance_age`` = b > 0, a record's weight within its source is also divided by the size of its
        age band to the power b (1: every band drawn equally often), so that children and the old, rare in most
        sets, are not left to the mean; each source keeps its share.
        """
        balance = float(self.cfg.balance_age or 0.0)
        if not any(s.weight is not None for s in self.sources) and balance == 0:
            return None
        shares = [s.weight for s in self.sources]
        return sampling_weights(self.splits["train"], self.source_index["train"], shares, balance)

    def _attach_teacher_targets(self, ds: FaceDataset) -> None:
        from agegender.training.distill import teacher_targets

        if self.progress:
            log.info("distillation: soft targets from %d teacher(s) on %d faces", len(self.distill.teachers), len(ds))
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
        weights = self.sample_weights() if train else None
        sampler = None
        if weights is not None:  # each source's share of every epoch, drawn with replacement
            gen = torch.Generator().manual_seed(int(torch.initial_seed()) % 2**31)
            sampler = WeightedRandomSampler(torch.as_tensor(weights), len(weights), replacement=True, generator=gen)
        return DataLoader(
            self.datasets[name],
            batch_size=self.cfg.batch_size if train else self.cfg.eval_batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            drop_last=train and len(self.datasets[name]) > self.cfg.batch_size,
            num_workers=workers,
            worker_init_fn=seed_worker_transforms,
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


def seed_worker_transforms(worker_id: int) -> None:
    """Each DataLoader worker reseeds its augmentation pipeline from its own torch seed: forked workers would
    otherwise share albumentations' generator state and apply the same augmentations in step."""
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "transform"):
        seed_transform(info.dataset.transform, info.seed % 2**32)


def sampling_weights(
    records: list[FaceRecord], source_index: np.ndarray, shares: list[float | None], balance: float = 0.0
) -> np.ndarray:
    """Each record's chance of being drawn (they sum to 1): source ``i`` gets ``shares[i]`` of every epoch (None: its
    natural share), spread over its records, each divided by the size of its age band to the power ``balance``.
    One definition for the training sampler and for what a recipe's training distribution was."""
    if balance < 0:
        raise DataError(f"data.balance_age must be >= 0, got {balance}")
    idx = np.asarray(source_index)
    counts = np.bincount(idx, minlength=len(shares)).astype(float)
    natural = counts / counts.sum()
    share = np.array([w if w is not None else natural[i] for i, w in enumerate(shares)])
    if (share < 0).any() or share.sum() <= 0:
        raise DataError(f"data.sources weights must be >= 0 and not all 0, got {share.tolist()}")
    within = np.ones(len(idx))
    if balance > 0:
        bands = np.array([age_band(r.age) if r.age is not None else "none" for r in records])
        for src in range(len(shares)):
            mine = idx == src
            _, inverse, band_counts = np.unique(bands[mine], return_inverse=True, return_counts=True)
            within[mine] = band_counts[inverse].astype(float) ** -balance
    totals = np.bincount(idx, weights=within, minlength=len(shares))
    return (share / share.sum())[idx] * within / np.maximum(totals, 1e-12)[idx]
