"""Knowledge distillation: soft targets from one or more trained teachers, computed once before training.

A small student learns from the averaged (optionally mirrored) predictions of bigger or several models: its age
target becomes ``(1 - alpha) * Gaussian(label) + alpha * teacher distribution`` and its gender target
``(1 - alpha) * label + alpha * teacher P(female)``. Soft targets also temper UTKFace's noisy age labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agegender.data.dataset import decode_all
from agegender.data.records import DataError, FaceRecord
from agegender.inference.engine import TorchEngine, load_net, predict_crops
from agegender.models.heads import gaussian_age_distribution
from agegender.models.model import AgeGenderNet


@dataclass
class SoftTargets:
    """Per-record teacher predictions: ``age_dist`` (N, bins) probabilities and ``p_female`` (N,)."""

    age_dist: np.ndarray
    p_female: np.ndarray


class SoftTargetEngine(TorchEngine):
    """A teacher as an inference engine whose outputs are (age distribution, P(female)), for predict_crops."""

    def __init__(self, net: AgeGenderNet, num_bins: int, sigma: float) -> None:
        super().__init__(net)
        self.num_bins, self.sigma = num_bins, sigma

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.net(torch.from_numpy(batch).contiguous(memory_format=torch.channels_last))
        if self.net.cfg.age_head == "distribution":
            dist = torch.softmax(out["age"].float(), dim=1)
            if dist.shape[1] != self.num_bins:
                raise DataError(f"teacher has {dist.shape[1]} age bins, the student {self.num_bins}")
        else:  # a regression teacher: a Gaussian around its estimate
            age, _ = self.net.age_head.decode(out["age"])
            dist = gaussian_age_distribution(age, self.num_bins, self.sigma)
        return dist.numpy(), self.net.gender_head.decode(out["gender"]).numpy()


def teacher_targets(
    teachers: Sequence[str],
    records: Sequence[FaceRecord],
    num_bins: int = 101,
    sigma: float = 2.0,
    tta: bool = True,
    batch_size: int = 128,
    progress: bool = True,
    images: np.ndarray | None = None,
) -> SoftTargets:
    """Average every teacher's (and, with ``tta``, its mirrored) predictions over ``records``.

    ``images``: the records already decoded (N, S, S, 3), reused for teachers whose input size is S.
    """
    if not teachers:
        raise DataError("distillation needs at least one teacher model folder or checkpoint")
    if not records:
        raise DataError("distillation needs at least one training face")
    dists, pfs = [], []
    crops, crops_size = images, (images.shape[1] if images is not None else None)
    for teacher in teachers:
        net, _ = load_net(teacher)
        if crops_size != net.input_size:
            crops, crops_size = decode_all(records, net.input_size, progress), net.input_size
        dist, pf = predict_crops(SoftTargetEngine(net, num_bins, sigma), list(crops), batch_size, tta, progress)
        dists.append(dist)
        pfs.append(pf)
    return SoftTargets(np.mean(dists, axis=0).astype(np.float32), np.mean(pfs, axis=0).astype(np.float32))


def blend_targets(
    age: torch.Tensor,
    age_dist: torch.Tensor | None,
    gender: torch.Tensor,
    teacher_dist: torch.Tensor,
    teacher_pf: torch.Tensor,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Mix label targets with teacher targets; returns (age, age_dist or None, P(female))."""
    ages = torch.arange(teacher_dist.shape[1], dtype=teacher_dist.dtype, device=teacher_dist.device)
    age = (1 - alpha) * age + alpha * (teacher_dist * ages).sum(1)
    if age_dist is not None:
        age_dist = (1 - alpha) * age_dist + alpha * teacher_dist
    return age, age_dist, (1 - alpha) * gender + alpha * teacher_pf
