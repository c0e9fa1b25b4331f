"""Inference engines: batched preprocessing plus a PyTorch or ONNX Runtime forward pass.

Both engines take RGB uint8 face crops and return (age, age_std, p_female) arrays, so evaluation,
prediction and serving do not care which runs underneath.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from agegender.data.transforms import build_eval_transform
from agegender.models.folder import DEFAULT_MODEL_DIR, ModelFolderError, load_model_folder, read_config
from agegender.models.model import AgeGenderNet

Predictions = tuple[np.ndarray, np.ndarray, np.ndarray]


class Preprocessor:
    """Resize + normalise exactly as in validation during training."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.size = size
        self.transform = build_eval_transform(size, tuple(mean), tuple(std))

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.transform(image=c)["image"].numpy() for c in crops]).astype(np.float32)


class TorchEngine:
    name = "torch"

    def __init__(self, net: AgeGenderNet, threads: int | None = None) -> None:
        self.net = net.eval().to(memory_format=torch.channels_last)
        self.pre = Preprocessor(net.input_size, net.mean, net.std)
        if threads:
            torch.set_num_threads(threads)

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> Predictions:
        x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        age, std, pf = self.net.predict(x)
        return age.numpy(), std.numpy(), pf.numpy()


def predict_crops(
    engine, crops: Sequence[np.ndarray], batch_size: int = 64, tta: bool = False, progress: bool = False
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
    """Load a model folder (default: the shipped one) or a Lightning checkpoint; returns (net, metadata)."""
    if model is not None and str(model).endswith(".ckpt"):
        from agegender.training.module import AgeGenderModule
        from agegender.training.train import check_checkpoint

        if not Path(model).is_file():
            raise ModelFolderError(f"checkpoint {model} does not exist")
        check_checkpoint(Path(model))
        module = AgeGenderModule.load_from_checkpoint(str(model), map_location="cpu")
        return module.net.eval(), {"checkpoint": str(model)}
    return load_model_folder(model), read_config(model if model is not None else DEFAULT_MODEL_DIR)
