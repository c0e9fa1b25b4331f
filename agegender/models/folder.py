"""Self-contained model folders: ``model.safetensors`` + ``config.json`` (+ optional MODEL_CARD.md).

The same format is written by ``agegender train`` and shipped as the default model, so users' models load
exactly like ours, with no network and no pickles.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from agegender.errors import AgeGenderError
from agegender.models.model import AgeGenderNet, ModelConfig, build_model

FORMAT_VERSION = 1
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default"
#: The face framing models are trained on: UTKFace "aligned & cropped" chips.
CROP_CONVENTION = "utkface_chip_200"


class ModelFolderError(AgeGenderError, FileNotFoundError):
    """A model folder that is missing or incomplete; the message says what is missing."""


def save_model_folder(net: AgeGenderNet, folder: str | Path, metadata: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(
        net.cfg,
        pretrained=False,
        pretrained_path=None,
        input_size=net.input_size,
        mean=list(net.mean),
        std=list(net.std),
    )
    config = {
        "format_version": FORMAT_VERSION,
        "model": cfg.to_dict(),
        "preprocessing": {
            "input_size": net.input_size,
            "mean": list(net.mean),
            "std": list(net.std),
            "color": "RGB",
            "crop": CROP_CONVENTION,
        },
        "labels": {"gender": {"0": "male", "1": "female"}, "age_range": [0, cfg.num_bins - 1], "age_unit": "years"},
        **(metadata or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    tmp = folder / "model.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.chmod(0o644)  # safetensors creates the file private; model folders are meant to be shared
    tmp.replace(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def read_config(folder: str | Path) -> dict:
    folder = Path(folder)
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ModelFolderError(f"{folder} is not a model folder: {cfg_path.name} is missing")
    try:
        return json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"{cfg_path} is not valid JSON ({e}): the model folder is damaged") from None


def load_model_folder(folder: str | Path | None = None, device: str | torch.device = "cpu") -> AgeGenderNet:
    """Load a model folder (default: the shipped model) in eval mode."""
    folder = Path(folder) if folder is not None else DEFAULT_MODEL_DIR
    config = read_config(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelFolderError(f"{folder} is not a complete model folder: model.safetensors is missing")
    net = build_model(ModelConfig(**config["model"]))
    net.load_state_dict(load_file(str(weights), device=str(device)))
    return net.to(device).eval()


#: Model settings that must agree between a network and the weights it is initialised from.
ARCHITECTURE_KEYS = ("backbone", "age_head", "gender_head", "hidden", "head_layers", "num_bins", "attention")


def init_state_dict(source: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights (and model settings, when known) of a model folder or a Lightning ``.ckpt`` file."""
    source = Path(source)
    if source.suffix == ".ckpt":
        if not source.is_file():
            raise ModelFolderError(f"model.init: checkpoint {source} does not exist")
        ckpt = torch.load(str(source), map_location="cpu", weights_only=False)
        state = {k[len("net.") :]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith("net.")}
        model = (ckpt.get("hyper_parameters") or {}).get("model") or {}
        return state, model
    if not source.is_dir():
        raise ModelFolderError(f"model.init: {source} is neither a model folder nor a .ckpt file")
    config = read_config(source)
    weights = source / "model.safetensors"
    if not weights.is_file():
        raise ModelFolderError(f"model.init: {source} has no model.safetensors")
    model = dict(config.get("model") or {})
    model["input_size"] = (config.get("preprocessing") or {}).get("input_size", model.get("input_size"))
    return load_file(str(weights)), model


def load_init_weights(net: AgeGenderNet, source: str | Path) -> None:
    """Start ``net`` from the weights in ``source`` (fine-tuning); the architectures must match exactly."""
    state, model = init_state_dict(source)
    mine = net.cfg.to_dict()
    diffs = [
        f"{k}: {model[k]!r} there, {mine[k]!r} here"
        for k in ARCHITECTURE_KEYS
        if k in model and model[k] is not None and mine.get(k) is not None and model[k] != mine[k]
    ]
    if model.get("input_size") and model["input_size"] != net.input_size:
        diffs.append(f"input_size: {model['input_size']} there, {net.input_size} here")
    if diffs:
        raise ModelFolderError(
            f"model.init: {source} has another architecture than the recipe ({'; '.join(diffs)}); "
            "use a recipe with the same model settings or override them (e.g. model.input_size=...)"
        )
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFolderError(
            f"model.init: {source} does not fit this network (missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]})"
        )
