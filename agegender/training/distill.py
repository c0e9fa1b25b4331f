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
from tqdm.auto import tqdm

from agegender.data.dataset import decode_all
from agegender.data.records import DataError, FaceRecord
from agegender.models.heads import gaussian_age_distribution


@dataclass
class SoftTargets:
    """Per-record teacher predictions: ``age_dist`` (N, bins) probabilities and ``p_female`` (N,)."""

    age_dist: np.ndarray
    p_female: np.ndarray


@torch.inference_mode()
def _teacher_outputs(net, x: torch.Tensor, num_bins: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    out = net(x)
    if net.cfg.age_head == "distribution":
        dist = torch.softmax(out["age"].float(), dim=1)
        if dist.shape[1] != num_bins:
            raise DataError(f"teacher has {dist.shape[1]} age bins, the student {num_bins}")
    else:  # a regression teacher: a Gaussian around its estimate
        age, _ = net.age_head.decode(out["age"])
        dist = gaussian_age_distribution(age, num_bins, sigma)
    return dist, net.gender_head.decode(out["gender"])


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
    from agegender.inference.engine import Preprocessor, load_net

    if not teachers:
        raise DataError("distillation needs at least one teacher model folder or checkpoint")
    dist_sum = np.zeros((len(records), num_bins), dtype=np.float64)
    pf_sum = np.zeros(len(records), dtype=np.float64)
    views = 0
    crops, crops_size = images, (images.shape[1] if images is not None else None)
    for teacher in teachers:
        net, _ = load_net(teacher)
        net = net.eval().to(memory_format=torch.channels_last)
        if crops_size != net.input_size:
            crops, crops_size = decode_all(records, net.input_size, progress), net.input_size
        pre = Preprocessor(net.input_size, net.mean, net.std)
        flips = (False, True) if tta else (False,)
        desc = f"teacher {teacher}"
        for start in tqdm(range(0, len(records), batch_size), desc=desc, disable=not progress, leave=False):
            batch = pre(list(crops[start : start + batch_size]))
            for flip in flips:
                b = np.ascontiguousarray(batch[..., ::-1]) if flip else batch
                x = torch.from_numpy(b).contiguous(memory_format=torch.channels_last)
                dist, pf = _teacher_outputs(net, x, num_bins, sigma)
                dist_sum[start : start + len(b)] += dist.double().numpy()
                pf_sum[start : start + len(b)] += pf.double().numpy()
        views += len(flips)
    return SoftTargets((dist_sum / views).astype(np.float32), (pf_sum / views).astype(np.float32))


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
