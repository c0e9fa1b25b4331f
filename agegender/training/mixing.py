"""MixUp and CutMix that mix images and every target with the same weight, so labels stay consistent."""

from __future__ import annotations

import numpy as np
import torch

from agegender.errors import ConfigError


def mix_batch(
    x: torch.Tensor,
    age: torch.Tensor,
    gender: torch.Tensor,
    age_dist: torch.Tensor | None,
    mode: str,
    alpha: float,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
    """Mix a batch with a shuffled copy of itself; returns mixed (x, age, gender, age_dist, lam).

    For CutMix, ``lam`` is the fraction of pixels that stay from the original image, and the targets use
    that same fraction.
    """
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(x.shape[0])).to(x.device)
    if mode == "mixup":
        x = lam * x + (1 - lam) * x[perm]
    elif mode == "cutmix":
        h, w = x.shape[-2:]
        cut = np.sqrt(1 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = np.clip([cy - ch // 2, cy + ch // 2], 0, h)
        x0, x1 = np.clip([cx - cw // 2, cx + cw // 2], 0, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x[perm][..., y0:y1, x0:x1]
        lam = 1 - float((y1 - y0) * (x1 - x0)) / (h * w)
    else:
        raise ConfigError(f"unknown mix mode {mode!r}")
    age = lam * age + (1 - lam) * age[perm]
    gender = lam * gender + (1 - lam) * gender[perm]
    if age_dist is not None:
        age_dist = lam * age_dist + (1 - lam) * age_dist[perm]
    return x, age, gender, age_dist, lam
