"""The age/gender network: backbone -> (optional attention) -> separate age and gender heads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from agegender.errors import ConfigError
from agegender.models.heads import AgeDistributionHead, AgeRegressionHead, FeatureAttention, GenderHead
from agegender.models.registry import create_backbone


@dataclass
class ModelConfig:
    """Everything needed to rebuild the network (saved with every model folder)."""

    backbone: str = "mobilenet_v2"
    pretrained: bool = False
    pretrained_path: str | None = None
    input_size: int | None = None  # None: the backbone's default
    age_head: str = "distribution"  # or "regression"
    gender_head: str = "bce"  # or "ce"
    hidden: int = 256
    head_layers: int = 1
    dropout: float = 0.3
    attention: bool | None = None  # None: the backbone's reference design
    num_bins: int = 101
    # Distribution head only: the answer is the mean of softmax(logits / age_temperature); < 1 reads closer to
    # the peak (see AgeDistributionHead). A read-out setting, not architecture: the weights do not depend on it.
    age_temperature: float = 1.0
    mean: list[float] | None = None  # None: the backbone's normalisation
    std: list[float] | None = None
    extra: dict = field(default_factory=dict)
    # Fine-tuning: a model folder (or Lightning checkpoint) whose weights start the training; the network it
    # names must have the same architecture. Recorded for provenance; building a network never reads it.
    init: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class AgeGenderNet(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        bb = create_backbone(cfg.backbone, cfg.pretrained, cfg.pretrained_path)
        self.cfg = cfg
        self.input_size = cfg.input_size or bb.default_size
        self.mean = tuple(cfg.mean or bb.mean)
        self.std = tuple(cfg.std or bb.std)
        self.backbone = bb.module
        use_attention = bb.attention if cfg.attention is None else cfg.attention
        self.neck = FeatureAttention(bb.num_features) if use_attention else nn.Identity()
        if cfg.age_head == "distribution":
            self.age_head: nn.Module = AgeDistributionHead(
                bb.num_features, cfg.hidden, cfg.dropout, cfg.head_layers, cfg.num_bins, cfg.age_temperature
            )
        elif cfg.age_head == "regression":
            if cfg.age_temperature != 1.0:
                raise ConfigError("age_temperature applies to the distribution age head only, not to regression")
            self.age_head = AgeRegressionHead(bb.num_features, cfg.hidden, cfg.dropout, cfg.head_layers)
        else:
            raise ConfigError(f"age head must be 'distribution' or 'regression', got {cfg.age_head!r}")
        self.gender_head = GenderHead(bb.num_features, cfg.hidden, cfg.dropout, cfg.gender_head, cfg.head_layers)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw head outputs, what the losses need."""
        f = self.neck(self.backbone(x))
        return {"age": self.age_head(f), "gender": self.gender_head(f)}

    def decode(self, out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(age in years, age std or NaN, P(female)) from raw outputs."""
        age, std = self.age_head.decode(out["age"])
        return age, std, self.gender_head.decode(out["gender"])

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.decode(self(x))


class InferenceNet(nn.Module):
    """Wraps a network so that forward returns final predictions: the graph exported to ONNX."""

    def __init__(self, net: AgeGenderNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net.predict(x)


def build_model(cfg: ModelConfig | dict) -> AgeGenderNet:
    if isinstance(cfg, dict):
        cfg = ModelConfig(**cfg)
    return AgeGenderNet(cfg)
