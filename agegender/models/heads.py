"""Prediction heads: age as regression or as a 101-bin distribution (DLDL), gender as BCE or CE logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from agegender.errors import ConfigError

AGE_SCALE = 100.0  # regression targets are age / 100 so the output sits near [0, 1]


def mlp(in_features: int, hidden: int, dropout: float, layers: int = 1) -> tuple[nn.Sequential, int]:
    """FC -> ReLU -> Dropout blocks, as in the ResNet18 reference head; returns the block and its width."""
    mods: list[nn.Module] = []
    width = in_features
    for _ in range(layers if hidden > 0 else 0):
        mods += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        width = hidden
    if not mods:
        mods.append(nn.Dropout(dropout))
    return nn.Sequential(*mods), width


class FeatureAttention(nn.Module):
    """Attention over pooled features (a gating MLP): the reference EfficientNet-B4 design's block."""

    def __init__(self, features: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(features // reduction, 8)
        self.gate = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, features))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f * torch.sigmoid(self.gate(f))


class AgeRegressionHead(nn.Module):
    kind = "regression"

    def __init__(self, in_features: int, hidden: int, dropout: float, layers: int = 1) -> None:
        super().__init__()
        self.body, width = mlp(in_features, hidden, dropout, layers)
        self.out = nn.Linear(width, 1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(f)).squeeze(1)

    @staticmethod
    def decode(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Age in years and its standard deviation (unknown for regression: NaN)."""
        return raw * AGE_SCALE, torch.full_like(raw, float("nan"))


class AgeDistributionHead(nn.Module):
    """Logits over integer ages 0..num_bins-1; the answer is the expectation, the spread the std.

    ``temperature`` < 1 reads the answer from the sharpened distribution ``softmax(logits / T)``: closer to
    its peak, where the mean of a wide distribution is pulled toward the common ages (teenagers read older,
    the old younger; benchmarks/age_decoding.py). The spread is always that of the distribution itself
    (T = 1), the one the interval calibration is fitted on.
    """

    kind = "distribution"

    def __init__(
        self,
        in_features: int,
        hidden: int,
        dropout: float,
        layers: int = 1,
        num_bins: int = 101,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ConfigError(f"age_temperature must be > 0, got {temperature!r}")
        self.temperature = float(temperature)
        self.body, width = mlp(in_features, hidden, dropout, layers)
        self.out = nn.Linear(width, num_bins)
        self.register_buffer("ages", torch.arange(num_bins, dtype=torch.float32), persistent=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(f))

    def decode(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = raw.float()
        p = F.softmax(raw, dim=1)
        mean = p @ self.ages
        var = p @ (self.ages**2) - mean**2
        if self.temperature != 1.0:
            mean = F.softmax(raw / self.temperature, dim=1) @ self.ages
        return mean, var.clamp_min(0).sqrt()


class GenderHead(nn.Module):
    """``bce``: one logit; ``ce``: two logits. Both decode to P(female)."""

    def __init__(self, in_features: int, hidden: int, dropout: float, kind: str = "bce", layers: int = 1):
        super().__init__()
        if kind not in ("bce", "ce"):
            raise ConfigError(f"gender head must be 'bce' or 'ce', got {kind!r}")
        self.kind = kind
        self.body, width = mlp(in_features, hidden, dropout, layers)
        self.out = nn.Linear(width, 1 if kind == "bce" else 2)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        out = self.out(self.body(f))
        return out.squeeze(1) if self.kind == "bce" else out

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        if self.kind == "bce":
            return torch.sigmoid(raw.float())
        return F.softmax(raw.float(), dim=1)[:, 1]


def gaussian_age_distribution(age: torch.Tensor, num_bins: int = 101, sigma: float = 2.0) -> torch.Tensor:
    """Soft label distribution (DLDL): a discretised Gaussian around each (clipped) age, rows sum to 1."""
    ages = torch.arange(num_bins, device=age.device, dtype=torch.float32)
    a = age.float().clamp(0, num_bins - 1).unsqueeze(1)
    logits = -((ages.unsqueeze(0) - a) ** 2) / (2 * sigma**2)
    return F.softmax(logits, dim=1)
