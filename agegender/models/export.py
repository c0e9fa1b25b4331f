"""ONNX export of the PyTorch network: the graph the ONNX Runtime engine (the fast CPU path) runs."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from agegender.models.folder import ONNX_FILE, OUTPUT_NAMES
from agegender.models.model import AgeGenderNet, InferenceNet

__all__ = ["ONNX_FILE", "OUTPUT_NAMES", "ReluFormPReLU", "export_onnx", "onnx_friendly"]


class ReluFormPReLU(nn.Module):
    """``PReLU(x) = relu(x) * (1 - a) + a * x``, exactly, in operators ONNX Runtime keeps in its fast layout.

    ONNX Runtime's blocked (NCHWc) CPU convolutions have no PRelu kernel, so every PReLU node costs a layout
    conversion in and out (with PRelu itself ~70% of MobileFaceNet's node time: benchmarks/onnx_prelu.py).
    """

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        self.register_buffer("a", prelu.weight.detach().clone())
        self.per_channel = prelu.weight.numel() > 1  # decided here, so tracing sees no data-dependent branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a.view(1, -1, *([1] * (x.dim() - 2))) if self.per_channel else self.a
        return torch.relu(x) * (1 - a) + a * x


def onnx_friendly(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every PReLU in the relu form above (same function, faster under ONNX Runtime)."""
    net = copy.deepcopy(net)
    for module in list(net.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.PReLU):
                setattr(module, name, ReluFormPReLU(child))
    return net


def export_onnx(net: AgeGenderNet, path: str | Path, opset: int = 17, rewrite_prelu: bool = True) -> Path:
    """Export the inference graph (image batch -> age, age_std, p_female) with a dynamic batch axis.

    ``rewrite_prelu=False`` keeps PReLU nodes as they are (only to measure what the rewrite buys).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = onnx_friendly(net.eval()) if rewrite_prelu else net.eval()
    wrapper = InferenceNet(net.to(memory_format=torch.contiguous_format)).eval()
    x = torch.zeros(1, 3, net.input_size, net.input_size)
    tmp = path.with_suffix(".onnx.tmp")
    torch.onnx.export(
        wrapper,
        (x,),
        str(tmp),
        input_names=["image"],
        output_names=OUTPUT_NAMES,
        opset_version=opset,
        dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}},
        dynamo=False,
    )
    tmp.replace(path)
    return path
