"""Built-in backbones. Each is one registered function returning pooled features and its normalisation.

Factories take only ``pretrained`` (their reference weights); a ``model.pretrained_path`` file is loaded for
every backbone alike by :func:`agegender.models.registry.create_backbone`.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import torch
from torch import nn

from agegender.models.registry import (
    Backbone,
    WeightsError,
    load_backbone_weights,
    register_backbone,
    resolve_weights_file,
)


class ScratchCNN(nn.Module):
    """The from-scratch baseline trunk: conv blocks (Conv-BN-ReLU-MaxPool-Dropout), then global pooling."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 256), dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c in channels:
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Dropout2d(dropout),
            ]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


@register_backbone("scratch_cnn")
def scratch_cnn(pretrained: bool = False) -> Backbone:
    if pretrained:
        raise WeightsError("scratch_cnn has no pretrained weights: set model.pretrained=false")
    net = ScratchCNN()
    return Backbone(net, net.out_features, default_size=128, pretrained_on=None)


def _torchvision_weights(builder, weights: str, what: str):
    """Load torchvision weights through its API: cached under $TORCH_HOME, downloaded where possible."""
    try:
        return builder(weights=weights)
    except Exception as e:  # URLError, HTTPError, hash mismatch...
        import torch.hub

        cache = torch.hub.get_dir()
        raise WeightsError(
            f"could not load {what} {weights} weights: not in the cache {cache}/checkpoints and the "
            f"download failed ({type(e).__name__}). Set TORCH_HOME to a folder holding "
            f"hub/checkpoints/<file>, give the file with model.pretrained_path=FILE, or use model.pretrained=false."
        ) from None


def _torchvision(name: str, pretrained: bool) -> nn.Module:
    import torchvision.models as tvm

    builder = getattr(tvm, name)
    return _torchvision_weights(builder, "IMAGENET1K_V1", name) if pretrained else builder(weights=None)


def _resnet(name: str, pretrained: bool) -> Backbone:
    net = _torchvision(name, pretrained)
    n = net.fc.in_features
    net.fc = nn.Identity()
    return Backbone(net, n)


@register_backbone("resnet18")
def resnet18(pretrained: bool = False) -> Backbone:
    return _resnet("resnet18", pretrained)


@register_backbone("resnet34")
def resnet34(pretrained: bool = False) -> Backbone:
    return _resnet("resnet34", pretrained)


@register_backbone("resnet50")
def resnet50(pretrained: bool = False) -> Backbone:
    return _resnet("resnet50", pretrained)


@register_backbone("mobilenet_v2")
def mobilenet_v2(pretrained: bool = False) -> Backbone:
    net = _torchvision("mobilenet_v2", pretrained)
    n = net.classifier[-1].in_features
    net.classifier = nn.Identity()
    return Backbone(net, n, default_size=128)


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be asked (offline mode, no connection), or None if it can.

    Without this, a machine without network spent ~50 s in the hub client's five retries before the error.
    """
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(v) for v in _PROXY_VARIABLES):
        return None  # the proxy is the way out: a direct probe would say nothing
    url = urlsplit(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        return f"cannot reach {host}:{port} ({e.strerror or type(e).__name__})"
    return None


@contextlib.contextmanager
def _hub_cache_only() -> Iterator[None]:
    """The hub client in offline mode: files come from its cache or fail at once, never after retries."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _timm(name: str, pretrained: bool) -> nn.Module:
    import timm

    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=0)
    unreachable = _hub_unreachable()
    try:
        with _hub_cache_only() if unreachable else contextlib.nullcontext():
            return timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as e:
        why = f"not in the Hugging Face cache and {unreachable}" if unreachable else type(e).__name__
        raise WeightsError(
            f"could not load pretrained {name} weights through timm/Hugging Face Hub ({why}). Give a local file "
            f"with model.pretrained_path=FILE or use model.pretrained=false."
        ) from None


def _efficientnet(name: str, pretrained: bool) -> Backbone:
    net = _timm(name, pretrained)
    size = {"efficientnet_b0": 224, "efficientnet_b1": 240, "efficientnet_b2": 260, "efficientnet_b3": 300}
    return Backbone(net, net.num_features, default_size=size.get(name, 384), attention=True)


@register_backbone("efficientnet_b0")
def efficientnet_b0(pretrained: bool = False) -> Backbone:
    return _efficientnet("efficientnet_b0", pretrained)


@register_backbone("efficientnet_b1")
def efficientnet_b1(pretrained: bool = False) -> Backbone:
    return _efficientnet("efficientnet_b1", pretrained)


@register_backbone("efficientnet_b2")
def efficientnet_b2(pretrained: bool = False) -> Backbone:
    return _efficientnet("efficientnet_b2", pretrained)


@register_backbone("efficientnet_b3")
def efficientnet_b3(pretrained: bool = False) -> Backbone:
    return _efficientnet("efficientnet_b3", pretrained)


@register_backbone("efficientnet_b4")
def efficientnet_b4(pretrained: bool = False) -> Backbone:
    return _efficientnet("efficientnet_b4", pretrained)


LITE0_FILE = "efficientnet_lite0/efficientnet-lite0-57934424.pth"


def _lite0_weights(state: dict, module: nn.Module) -> dict:
    """The local ImageNet file has lukemelas-style keys (``_conv_stem``...): map it by position, shapes checked.
    A file saved from this very module (timm keys) passes unchanged."""
    dst = module.state_dict()
    if set(dst) <= set(state):
        return state
    src = [v for k, v in state.items() if not k.startswith("_fc.")]
    if len(src) != len(dst) or any(a.shape != b.shape for a, b in zip(src, dst.values(), strict=True)):
        raise WeightsError("the weights file does not match efficientnet_lite0 tensor by tensor")
    return dict(zip(dst.keys(), src, strict=True))


@register_backbone("efficientnet_lite0", adapt_weights=_lite0_weights)
def efficientnet_lite0(pretrained: bool = False) -> Backbone:
    """timm's Lite0; its ImageNet weights are a local file ($AGEGENDER_WEIGHTS_DIR/efficientnet_lite0/)."""
    import timm

    net = timm.create_model("efficientnet_lite0", pretrained=False, num_classes=0)
    bb = Backbone(net, net.num_features, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), default_size=128)
    if pretrained:
        load_backbone_weights(bb, resolve_weights_file(None, LITE0_FILE, "EfficientNet-Lite0"), "efficientnet_lite0")
    return bb


MOBILEFACENET_FILE = "mobilefacenet_casia/mobilefacenet_casia_068.ckpt"


class _PooledMobileFaceNet(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.pooled_features(x)


def _mobilefacenet_weights(state: dict, module: nn.Module) -> dict:
    """The CASIA-WebFace checkpoint holds MobileFaceNet's own keys; the backbone wraps it as ``net``."""
    return state if all(k.startswith("net.") for k in state) else {f"net.{k}": v for k, v in state.items()}


@register_backbone("mobilefacenet", adapt_weights=_mobilefacenet_weights)
def mobilefacenet(pretrained: bool = False) -> Backbone:
    """Face-recognition pretrained MobileFaceNet (CASIA-WebFace); features pooled from its 512-ch map."""
    from agegender.models.mobilefacenet import MOBILEFACENET_MEAN, MOBILEFACENET_STD, MobileFaceNet

    bb = Backbone(
        _PooledMobileFaceNet(MobileFaceNet()),
        512,
        MOBILEFACENET_MEAN,
        MOBILEFACENET_STD,
        default_size=112,
        pretrained_on="face recognition on CASIA-WebFace (itself licensed for non-commercial research)",
    )
    if pretrained:
        load_backbone_weights(bb, resolve_weights_file(None, MOBILEFACENET_FILE, "MobileFaceNet"), "mobilefacenet")
    return bb


MOBILEFACENET_Y1_FILE = "mobilefacenet_ms1m_y1/mobilefacenet_y1_ms1m_arcface_fp32.pth"


def _mobilefacenet_y1_weights(state: dict, module: nn.Module) -> dict:
    """InsightFace's y1 file (its key names, plus an embedding we drop) renamed onto the trunk; a file saved
    from this backbone (``net.`` keys) passes unchanged."""
    from agegender.models.mobilefacenet_y1 import y1_to_mobilefacenet

    if any(k.startswith("net.") for k in state):
        return state
    return _mobilefacenet_weights(y1_to_mobilefacenet(state, module.net.state_dict()), module)


@register_backbone("mobilefacenet_y1", adapt_weights=_mobilefacenet_y1_weights)
def mobilefacenet_y1(pretrained: bool = False) -> Backbone:
    """MobileFaceNet trained for face recognition on MS1M with ArcFace (InsightFace y1), 112 px; features pooled
    from its 512-ch ``conv_6sep`` map. A stronger init than the CASIA one: frozen features of 2,400 UTKFace chips
    give gender 92.3% vs 91.0% and age MAE 6.5 vs 7.1 years (``benchmarks/results/frozen_features_2400.md``)."""
    from agegender.models.mobilefacenet import MOBILEFACENET_MEAN, MOBILEFACENET_STD
    from agegender.models.mobilefacenet_y1 import build_mobilefacenet_y1

    bb = Backbone(
        _PooledMobileFaceNet(build_mobilefacenet_y1()),
        512,
        MOBILEFACENET_MEAN,
        MOBILEFACENET_STD,
        default_size=112,
        pretrained_on=(
            "face recognition on MS-Celeb-1M with ArcFace (InsightFace's MobileFaceNet `model-y1-test2`; InsightFace "
            "models are licensed for non-commercial research only, and Microsoft withdrew MS-Celeb-1M in 2019)"
        ),
    )
    if pretrained:
        path = resolve_weights_file(None, MOBILEFACENET_Y1_FILE, "MobileFaceNet y1 (MS1M)")
        load_backbone_weights(bb, path, "mobilefacenet_y1")
    return bb
