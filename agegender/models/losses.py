"""Age and gender losses with soft targets (so MixUp/CutMix mix them consistently) and task weighting."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from agegender.errors import ConfigError
from agegender.models.heads import AGE_SCALE, gaussian_age_distribution

_REGRESSION_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "smooth_l1": F.smooth_l1_loss}


class AgeGenderLoss(nn.Module):
    """Sum of an age loss and a gender loss, weighted by fixed weights or learned uncertainty.

    Targets: ``age`` in years (B,), ``gender`` as P(female) in [0, 1] (B,), and optionally ``age_dist``
    (B, bins) for the distribution head, which MixUp passes pre-mixed.
    ``weighting="uncertainty"`` learns one log-variance per task (Kendall, Gal & Cipolla, 2018).
    """

    def __init__(
        self,
        age_head: str = "distribution",
        gender_head: str = "bce",
        age_loss: str = "l1",
        sigma: float = 2.0,
        num_bins: int = 101,
        weighting: str = "fixed",
        age_weight: float = 1.0,
        gender_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if age_head not in ("distribution", "regression"):
            raise ConfigError(f"age_head must be 'distribution' or 'regression', got {age_head!r}")
        if gender_head not in ("bce", "ce"):
            raise ConfigError(f"gender_head must be 'bce' or 'ce', got {gender_head!r}")
        if age_loss not in _REGRESSION_LOSSES:
            raise ConfigError(f"age_loss must be one of {sorted(_REGRESSION_LOSSES)}, got {age_loss!r}")
        if weighting not in ("fixed", "uncertainty"):
            raise ConfigError(f"weighting must be 'fixed' or 'uncertainty', got {weighting!r}")
        self.age_head, self.gender_head = age_head, gender_head
        self.age_loss, self.sigma, self.num_bins = age_loss, sigma, num_bins
        self.weighting = weighting
        self.weights = (age_weight, gender_weight)
        if weighting == "uncertainty":
            self.log_vars = nn.Parameter(torch.zeros(2))

    def age_target_distribution(self, age: torch.Tensor) -> torch.Tensor:
        return gaussian_age_distribution(age, self.num_bins, self.sigma)

    def age_term(self, raw: torch.Tensor, age: torch.Tensor, age_dist: torch.Tensor | None) -> torch.Tensor:
        if self.age_head == "distribution":
            target = age_dist if age_dist is not None else self.age_target_distribution(age)
            return F.kl_div(F.log_softmax(raw.float(), dim=1), target, reduction="batchmean")
        return _REGRESSION_LOSSES[self.age_loss](raw.float(), age.float() / AGE_SCALE)

    def gender_term(self, raw: torch.Tensor, gender: torch.Tensor) -> torch.Tensor:
        g = gender.float()
        if self.gender_head == "bce":
            return F.binary_cross_entropy_with_logits(raw.float(), g)
        return F.cross_entropy(raw.float(), torch.stack([1 - g, g], dim=1))

    def forward(
        self,
        out: dict[str, torch.Tensor],
        age: torch.Tensor,
        gender: torch.Tensor,
        age_dist: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        la = self.age_term(out["age"], age, age_dist)
        lg = self.gender_term(out["gender"], gender)
        if self.weighting == "uncertainty":
            s = self.log_vars
            total = torch.exp(-s[0]) * la + s[0] + torch.exp(-s[1]) * lg + s[1]
        else:
            total = self.weights[0] * la + self.weights[1] * lg
        return total, {"age_loss": la.detach(), "gender_loss": lg.detach()}
