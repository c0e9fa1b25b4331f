"""MobileFaceNet "y1" (InsightFace ``model-y1-test2``: MS-Celeb-1M, ArcFace) on our MobileFaceNet trunk.

InsightFace's ``fmobilefacenet`` y1 is, layer for layer, the trunk of :class:`MobileFaceNet` (Xiaoccer's
CASIA network): conv 3x3/2 64, depthwise 64, then 15 bottlenecks with the same expansions, widths and strides
(``dconv_23`` + ``res_3`` x4 = the first ``(2, 64, 5, 2)`` row, ``dconv_34`` + ``res_4`` x6, ``dconv_45`` +
``res_5`` x2), then the 1x1 512 ``conv_6sep``. Only the BatchNorm epsilon (MXNet's 1e-3) and the embedding
differ, so instead of a second copy of the network its state dict is renamed onto ours. The embedding
(``conv_6dw7_7``, a 7x7 global depthwise conv that only fits 112x112 input, ``pre_fc1``, ``fc1``) is dropped on
purpose: the age/gender heads pool the 512-channel ``conv_6sep`` map (7x7 at 112 px) at any input size.

Inputs: 112x112 RGB scaled as ``(x - 127.5) / 128``, i.e. ``MOBILEFACENET_MEAN``/``MOBILEFACENET_STD``.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor

from agegender.models.mobilefacenet import MobileFaceNet
from agegender.models.registry import WeightsError

__all__ = ["Y1_BN_EPS", "Y1_EMBEDDING_PREFIXES", "build_mobilefacenet_y1", "y1_layer_names", "y1_to_mobilefacenet"]

#: MXNet's BatchNorm default, which the y1 graph (``model-symbol.json``) does not override.
Y1_BN_EPS = 1e-3
#: The face-recognition embedding of the y1 file, not part of the backbone.
Y1_EMBEDDING_PREFIXES = ("conv_6dw7_7.", "pre_fc1.", "fc1.")
#: InsightFace's stages in order, with their number of residual blocks (0: one stride-2 block, no index).
_Y1_STAGES = (("dconv_23", 0), ("res_3", 4), ("dconv_34", 0), ("res_4", 6), ("dconv_45", 0), ("res_5", 2))
#: InsightFace's layers inside one block -> index in our ``Bottleneck.conv`` (the projection has no PReLU).
_Y1_BLOCK_LAYERS = {
    "conv_sep.conv": 0,
    "conv_sep.bn": 1,
    "conv_sep.act": 2,
    "conv_dw.conv": 3,
    "conv_dw.bn": 4,
    "conv_dw.act": 5,
    "conv_proj.conv": 6,
    "conv_proj.bn": 7,
}


def build_mobilefacenet_y1() -> MobileFaceNet:
    """The y1 trunk: MobileFaceNet up to ``conv2`` (= ``conv_6sep``), with MXNet's BatchNorm epsilon."""
    return MobileFaceNet(embedding=False, bn_eps=Y1_BN_EPS)


def y1_layer_names() -> dict[str, str]:
    """InsightFace layer path -> ours, e.g. ``res_3.0.conv_dw.act`` -> ``blocks.1.conv.5``."""
    names: dict[str, str] = {}
    for theirs, ours in (("conv_1", "conv1"), ("conv_2_dw", "dw_conv1"), ("conv_6sep", "conv2")):
        names |= {f"{theirs}.conv": f"{ours}.conv", f"{theirs}.bn": f"{ours}.bn", f"{theirs}.act": f"{ours}.prelu"}
    blocks = [stage if n == 0 else f"{stage}.{i}" for stage, n in _Y1_STAGES for i in range(max(n, 1))]
    for b, block in enumerate(blocks):
        names |= {f"{block}.{layer}": f"blocks.{b}.conv.{k}" for layer, k in _Y1_BLOCK_LAYERS.items()}
    return names


def y1_to_mobilefacenet(state: dict[str, Tensor], own_keys: Iterable[str]) -> dict[str, Tensor]:
    """Rename a y1 state dict (InsightFace key names) onto the trunk's keys ``own_keys``.

    Strict for the trunk: every trunk tensor must come from the file and every file key must land somewhere,
    except the embedding layers, which are dropped. Errors list the keys in the file's own naming, so that
    they can be looked up in its ``state_dict_keys.txt``.
    """
    names = y1_layer_names()
    back = {ours: theirs for theirs, ours in names.items()}
    own = set(own_keys)
    out: dict[str, Tensor] = {}
    unexpected = []
    for key, value in state.items():
        if key.startswith(Y1_EMBEDDING_PREFIXES):
            continue
        layer, _, param = key.rpartition(".")
        ours = f"{names.get(layer, '?')}.{param}"
        if ours in own:
            out[ours] = value
        else:
            unexpected.append(key)
    missing = []
    for key in own:
        if key not in out and not key.endswith("num_batches_tracked"):
            layer, _, param = key.rpartition(".")
            missing.append(f"{back.get(layer, layer)}.{param}")
    if missing or unexpected:
        raise WeightsError(
            f"not a MobileFaceNet y1 state dict: missing {len(missing)} keys {sorted(missing)[:5]}, "
            f"unexpected {len(unexpected)} keys {unexpected[:5]} (expected InsightFace names such as "
            "'conv_1.conv.weight' ... 'conv_6sep.act.weight'; the embedding conv_6dw7_7/pre_fc1/fc1 is optional)"
        )
    return out
