"""Inference engines: a face-crop batch in, (age, age_std, p_female) arrays out.

:class:`OnnxEngine` is the runtime: ONNX Runtime plus the model folder's ``config.json`` (no torch, no
safetensors). :class:`TorchEngine` runs the PyTorch network (folders without ``model.onnx``, ``.ckpt`` files,
or on request); it needs the ``train`` extra and imports torch only when it is created. Evaluation, prediction
and serving do not care which one runs underneath.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from agegender.errors import ConfigError, MissingExtraError, missing_extra
from agegender.inference.preprocess import Preprocessor
from agegender.models.folder import (
    DEFAULT_MODEL_DIR,
    ONNX_FILE,
    OUTPUT_NAMES,
    Preprocessing,
    check_fingerprints,
    read_config,
)

if TYPE_CHECKING:
    from agegender.models.model import AgeGenderNet

Predictions = tuple[np.ndarray, np.ndarray, np.ndarray]
BACKENDS = ("auto", "torch", "onnx")


class Engine(Protocol):
    """What :func:`predict_crops` needs: a preprocessor and a forward pass over an NCHW float32 batch."""

    name: str
    pre: Preprocessor

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, ...]: ...


def require_torch(what: str) -> None:
    """Fail with the extra to install when torch is missing (the lean install has no torch)."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as e:
        # torch is in the 'train' extra, so missing_extra always names it
        raise MissingExtraError(f"{missing_extra(e, what)}; or use a model folder with model.onnx") from None


class OnnxEngine:
    """Runs ``model.onnx`` with ONNX Runtime on the CPU; same interface as :class:`TorchEngine`."""

    name = "onnx"

    def __init__(self, path: str | Path, input_size: int, mean, std, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.pre = Preprocessor(input_size, mean, std)

    @classmethod
    def from_folder(cls, folder: str | Path, threads: int | None = None) -> OnnxEngine:
        """The runtime path: ``model.onnx`` with the preprocessing its ``config.json`` states."""
        folder = Path(folder)
        spec = Preprocessing.from_config(read_config(folder), folder / "config.json")
        return cls(folder / ONNX_FILE, spec.input_size, spec.mean, spec.std, threads)

    def run(self, batch: np.ndarray) -> Predictions:
        age, std, pf = self.session.run(OUTPUT_NAMES, {"image": np.ascontiguousarray(batch, dtype=np.float32)})
        return age, std, pf


class TorchEngine:
    """Runs the PyTorch network (channels-last, inference mode); needs torch."""

    name = "torch"

    def __init__(self, net: AgeGenderNet, threads: int | None = None) -> None:
        import torch

        self._torch = torch
        self.net = net.eval().to(memory_format=torch.channels_last)
        self.pre = Preprocessor(net.input_size, net.mean, net.std)
        if threads:
            torch.set_num_threads(threads)

    def run(self, batch: np.ndarray) -> Predictions:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
            age, std, pf = self.net.predict(x)
        return age.numpy(), std.numpy(), pf.numpy()


def predict_crops(
    engine: Engine, crops: Sequence[np.ndarray], batch_size: int = 64, tta: bool = False, progress: bool = False
) -> tuple[np.ndarray, ...]:
    """Run an engine over many crops in batches; ``tta`` averages with the mirrored crop.

    Returns one array per output of ``engine.run`` (for the inference engines: age, age_std, p_female).
    """
    from tqdm.auto import tqdm

    parts = []
    for start in tqdm(range(0, len(crops), batch_size), desc="predicting", disable=not progress, leave=False):
        batch = engine.pre(crops[start : start + batch_size])
        out = engine.run(batch)
        if tta:
            mirrored = engine.run(np.ascontiguousarray(batch[..., ::-1]))
            out = tuple((a + b) / 2 for a, b in zip(out, mirrored, strict=True))
        parts.append(out)
    if not parts:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def load_net(model: str | Path | None) -> tuple[AgeGenderNet, dict]:
    """The PyTorch network of a model folder (default: the shipped one) or a ``.ckpt``; returns (net, metadata)."""
    from agegender.models.folder import load_checkpoint_net, load_model_folder

    require_torch("loading the PyTorch network")
    if model is not None and str(model).endswith(".ckpt"):
        return load_checkpoint_net(model), {"checkpoint": str(model)}
    return load_model_folder(model), read_config(model if model is not None else DEFAULT_MODEL_DIR)


def load_engine(model: str | Path | None = None, backend: str = "auto", threads: int | None = None) -> tuple[Any, dict]:
    """The engine for a model folder or ``.ckpt`` and the folder's config. ``backend``: auto | torch | onnx.

    ``auto`` runs ``model.onnx`` when the folder has one (ONNX Runtime, no torch), else the PyTorch network.
    ``onnx`` on a folder without ``model.onnx`` exports one to a temporary file first (needs torch).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    folder = Path(model) if model is not None else DEFAULT_MODEL_DIR
    onnx_file = folder / ONNX_FILE
    has_onnx = folder.is_dir() and onnx_file.is_file()
    config = read_config(folder) if folder.is_dir() else None
    if config is not None:
        check_fingerprints(folder, config)
    if backend in ("onnx", "auto") and has_onnx:
        return OnnxEngine.from_folder(folder, threads), config
    net, config = load_net(model)
    if backend == "onnx":  # ONNX Runtime holds the model in memory once the session exists
        import tempfile

        from agegender.models.export import export_onnx

        with tempfile.TemporaryDirectory(prefix="agegender-onnx-") as tmp:
            path = export_onnx(net, Path(tmp) / ONNX_FILE)
            return OnnxEngine(path, net.input_size, net.mean, net.std, threads), config
    return TorchEngine(net, threads), config
