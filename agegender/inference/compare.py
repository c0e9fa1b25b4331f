"""Check that an exported model gives the same answers as PyTorch (maximum absolute differences)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from agegender.models.model import AgeGenderNet

#: Agreement we promise between ONNX Runtime / TorchScript and PyTorch on the same input.
TOLERANCE = {"age": 0.05, "age_std": 0.05, "p_female": 1e-3}


def compare_backends(net: AgeGenderNet, exported: str | Path, fmt: str = "onnx", n: int = 16, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3, net.input_size, net.input_size)).astype(np.float32)
    with torch.inference_mode():
        ref = [t.numpy() for t in net.eval().predict(torch.from_numpy(x))]
    if fmt == "onnx":
        from agegender.inference.engine import OnnxEngine

        eng = OnnxEngine(exported, net.input_size, net.mean, net.std)
        got = eng.run(x)
    else:
        mod = torch.jit.load(str(exported))
        with torch.inference_mode():
            got = [t.numpy() for t in mod(torch.from_numpy(x))]
    diffs = {}
    for name, a, b in zip(("age", "age_std", "p_female"), ref, got, strict=True):
        b = np.asarray(b)
        mask = ~np.isnan(a)
        if (np.isnan(b) != ~mask).any():  # NaN (no estimate, e.g. a regression head's std) must stay NaN
            diffs[name] = float("inf")
            continue
        diffs[name] = float(np.max(np.abs(a[mask] - b[mask]))) if mask.any() else 0.0
    return {"max_abs_diff": diffs, "tolerance": TOLERANCE, "ok": all(diffs[k] <= TOLERANCE[k] for k in diffs)}
