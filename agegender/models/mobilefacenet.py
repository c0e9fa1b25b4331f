"""MobileFaceNet backbone (Chen et al. 2018) with weights from Xiaoccer/MobileFaceNet_Pytorch.

The module tree and parameter names reproduce ``core/model.py`` of github Xiaoccer/MobileFaceNet_Pytorch
exactly, so its CASIA-WebFace checkpoint (``model/best/068.ckpt``, 333 state-dict entries) loads with
``strict=True``. The network was trained on 112x96 (H x W) RGB face crops scaled as ``(x - 127.5) / 128``.

Shape walk-through for a 112x96 input::

    conv1 (3x3/2)  -> 64 x 56 x 48
    dw_conv1       -> 64 x 56 x 48
    blocks         -> 128 x 7 x 6      (three stride-2 bottlenecks: /8)
    conv2 (1x1)    -> 512 x 7 x 6      <- forward_features / pooled_features
    linear7 (7x6)  -> 512 x 1 x 1      global depthwise conv (GDConv)
    linear1 (1x1)  -> 128 x 1 x 1      embedding
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from agegender.models.registry import WeightsError, WeightsNotFoundError

__all__ = [
    "MOBILEFACENET_BOTTLENECK_SETTING",
    "MOBILEFACENET_INPUT_SIZE",
    "MOBILEFACENET_MEAN",
    "MOBILEFACENET_STD",
    "Bottleneck",
    "ConvBlock",
    "MobileFaceNet",
    "load_mobilefacenet_casia",
]

# Torchvision-style normalisation ``(x - mean) / std`` of inputs in [0, 1] that equals the training-time
# ``(x * 255 - 127.5) / 128``: mean = 127.5 / 255 = 0.5 and std = 128 / 255 (about 0.50196).
MOBILEFACENET_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
MOBILEFACENET_STD: tuple[float, float, float] = (128 / 255, 128 / 255, 128 / 255)

# (height, width) the pretrained net was trained on; the 7x6 GDConv only fits this size.
MOBILEFACENET_INPUT_SIZE: tuple[int, int] = (112, 96)

# (expansion t, output channels c, repeats n, first stride s), as in the paper's Table 1.
MOBILEFACENET_BOTTLENECK_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)


class Bottleneck(nn.Module):
    """Inverted residual (1x1 expand, 3x3 depthwise, 1x1 linear project) with PReLU.

    The layers live in one ``nn.Sequential`` called ``conv`` (indices 0..7) because that is how the
    checkpoint names them (``blocks.N.conv.K.*``).
    """

    def __init__(self, inp: int, oup: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inp * expansion
        self.connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.connect else out


class ConvBlock(nn.Module):
    """Conv (optionally depthwise) + BN (+ PReLU unless ``linear``); names ``conv``/``bn``/``prelu``."""

    def __init__(
        self,
        inp: int,
        oup: int,
        k: int | tuple[int, int],
        s: int,
        p: int,
        dw: bool = False,
        linear: bool = False,
    ) -> None:
        super().__init__()
        self.linear = linear
        self.conv = nn.Conv2d(inp, oup, k, s, p, groups=inp if dw else 1, bias=False)
        self.bn = nn.BatchNorm2d(oup)
        # Only non-linear blocks own a PReLU, so that the state-dict keys match the checkpoint.
        self.prelu: nn.PReLU | None = None if linear else nn.PReLU(oup)

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class MobileFaceNet(nn.Module):
    """MobileFaceNet with the exact parameter names of the Xiaoccer/MobileFaceNet_Pytorch checkpoint.

    ``forward`` gives the original 128-d face embedding and only works for 112x96 inputs.
    For age/gender heads use ``pooled_features``, which works at any input size.
    """

    feature_dim: int = 512
    embedding_dim: int = 128

    def __init__(
        self,
        bottleneck_setting: Sequence[Sequence[int]] = MOBILEFACENET_BOTTLENECK_SETTING,
        embedding: bool = True,
        bn_eps: float = 1e-5,
    ) -> None:
        """``embedding=False`` keeps the trunk only (up to ``conv2``), for weights whose embedding layers differ
        (InsightFace's y1); ``bn_eps`` is the BatchNorm epsilon the weights were trained with (MXNet: 1e-3)."""
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, dw=True)
        self.blocks = self._make_layer(64, bottleneck_setting)
        self.conv2 = ConvBlock(128, self.feature_dim, 1, 1, 0)
        self.linear7: ConvBlock | None = None
        self.linear1: ConvBlock | None = None
        if embedding:
            self.linear7 = ConvBlock(self.feature_dim, self.feature_dim, (7, 6), 1, 0, dw=True, linear=True)
            self.linear1 = ConvBlock(self.feature_dim, self.embedding_dim, 1, 1, 0, linear=True)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = bn_eps
        self._init_weights()

    @staticmethod
    def _make_layer(inplanes: int, setting: Sequence[Sequence[int]]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for t, c, n, s in setting:
            for i in range(n):
                layers.append(Bottleneck(inplanes, c, s if i == 0 else 1, t))
                inplanes = c
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        """He-normal init with fan-out, as in the reference code (used when no checkpoint is loaded)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """512-channel map after the 1x1 ``conv2`` (before the GDConv): ``[B, 512, H/16, W/16]``."""
        x = self.conv1(x)
        x = self.dw_conv1(x)
        x = self.blocks(x)
        return self.conv2(x)

    def pooled_features(self, x: Tensor) -> Tensor:
        """Size-agnostic ``[B, 512]`` descriptor: global average pool of ``forward_features``.

        The pretrained GDConv (``linear7``) is a 7x6 depthwise kernel with no padding, i.e. a learned
        spatial weighting that only fits the 7x6 map of a 112x96 input: a 112x112 input gives a 7x7 map
        (output 1x2, not a vector) and 128x128 gives 8x8. Average pooling has no such constraint, so the
        age/gender heads can be trained at whatever crop size the data pipeline uses.
        """
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.forward_features(x), 1), 1)

    def forward(self, x: Tensor) -> Tensor:
        """Original 128-d face embedding (un-normalised); input must be ``[B, 3, 112, 96]``."""
        if self.linear7 is None or self.linear1 is None:
            raise ValueError("this MobileFaceNet was built without embedding layers; use pooled_features()")
        x = self.forward_features(x)
        h, w = x.shape[-2:]
        kh, kw = self.linear7.conv.kernel_size
        if (h, w) != (kh, kw):
            raise ValueError(
                f"MobileFaceNet.forward needs a {kh}x{kw} feature map (112x96 input), got {h}x{w}; "
                "use pooled_features() for other input sizes"
            )
        x = self.linear7(x)
        x = self.linear1(x)
        return torch.flatten(x, 1)


def load_mobilefacenet_casia(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read the Xiaoccer CASIA-WebFace checkpoint and return its ``net_state_dict``.

    The file is ``{"epoch": int, "net_state_dict": OrderedDict[str, Tensor]}``, which the safe
    ``weights_only=True`` unpickler accepts, so no arbitrary code runs when loading it. A bare state dict
    (without the wrapper) is accepted too.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"MobileFaceNet checkpoint not found: {path}. Set model.pretrained_path to the file, or "
            "AGEGENDER_WEIGHTS_DIR to the folder holding mobilefacenet_casia/mobilefacenet_casia_068.ckpt "
            "(the shared assets ship it as ../shared/weights/mobilefacenet_casia/)."
        )
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict):
        raise WeightsError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    state = ckpt.get("net_state_dict", ckpt)
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}
