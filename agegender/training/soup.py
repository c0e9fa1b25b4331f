"""Weight averaging ("model soup", WiSE-FT): one network whose weights are a weighted mean of fine-tunes of one start.

Fine-tuning the shipped model on wild photos moves it towards them and a little away from what it knew; averaging
the start and the fine-tune keeps both (Wortsman et al., 2022: robust fine-tuning of zero-shot models). It costs no
training and no inference time. Members must share one architecture, and averaging only makes sense for models
fine-tuned from one start (same basin); the result is a run-like folder (``model/`` + ``split.json``) that
``agegender package`` and ``agegender evaluate`` take like any run.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from agegender.models.folder import (
    ModelFolderError,
    init_state_dict,
    load_checkpoint_net,
    load_model_folder,
    read_config,
    save_model_folder,
)
from agegender.utils.io import ensure_writable

__all__ = ["average_weights", "effective_members", "make_soup"]

log = logging.getLogger(__name__)


def average_weights(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]) -> dict[str, torch.Tensor]:
    """Weighted mean of floating-point tensors; integer buffers (BatchNorm's batch counter) from the first."""
    if len(states) != len(weights) or not states:
        raise ModelFolderError(f"{len(states)} models but {len(weights)} weights")
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ModelFolderError(f"soup weights must be >= 0 and not all 0, got {list(weights)}")
    keys = set(states[0])
    for i, s in enumerate(states[1:], 1):
        if set(s) != keys or any(s[k].shape != states[0][k].shape for k in keys):
            raise ModelFolderError(f"model {i + 1} has another architecture than model 1: they cannot be averaged")
    out = {}
    for k, first in states[0].items():
        if first.is_floating_point():
            out[k] = sum(float(w) / total * s[k].double() for s, w in zip(states, weights, strict=True)).to(first.dtype)
        else:
            out[k] = first.clone()
    return out


def effective_members(members: Sequence[Path], weights: Sequence[float]) -> tuple[list[str], list[float]]:
    """Each training's share of the averaged weights. A member that is itself a soup counts as the members its config
    records, so a soup of a soup names the trainings behind it (and their true shares) rather than a folder copy."""
    total = float(sum(weights))
    shares: dict[str, float] = {}
    for member, weight in zip(members, weights, strict=True):
        inner = (read_config(member).get("training") or {}).get("soup") if member.is_dir() else None
        parts = zip(inner["members"], inner["weights"], strict=True) if inner else [(str(member), 1.0)]
        for name, share in parts:
            shares[name] = shares.get(name, 0.0) + float(weight) / total * float(share)
    return list(shares), list(shares.values())


def make_soup(
    members: Sequence[str | Path],
    output: str | Path,
    split_file: str | Path,
    weights: Sequence[float] | None = None,
) -> Path:
    """Average ``members`` (model folders or ``.ckpt`` files) into ``output/model``; copy ``split_file`` beside it.

    The config (recipe, training record) is the last model folder's (by convention the newest fine-tune:
    ``soup START FINE_TUNE``), with the soup recorded under ``training.soup``, so the card says what was averaged:
    ``members``/``weights`` are the trainings behind it and their shares (``effective_members``), ``averaged`` the
    folders given here when that differs.
    """
    members = [Path(m) for m in members]
    if len(members) < 2:
        raise ModelFolderError("a soup needs at least two models")
    weights = list(weights) if weights is not None else [1.0] * len(members)
    split_file, output = Path(split_file), Path(output)
    if not split_file.is_file():
        raise ModelFolderError(f"split file {split_file} does not exist")
    ensure_writable(output, kind="dir")
    states = [init_state_dict(m)[0] for m in members]
    folders = [m for m in members if m.is_dir()]
    base = load_model_folder(folders[-1]) if folders else load_checkpoint_net(members[-1])
    base.load_state_dict(average_weights(states, weights))
    training = dict(read_config(folders[-1]).get("training") or {}) if folders else {}
    total = float(sum(weights))
    given = {"members": [str(m) for m in members], "weights": [w / total for w in weights]}
    names, shares = effective_members(members, weights)
    training["soup"] = {"members": names, "weights": shares}
    if names != given["members"]:
        training["soup"]["averaged"] = given
    save_model_folder(base, output / "model", {"training": training})
    shutil.copyfile(split_file, output / "split.json")
    # a run's summary: `benchmark candidate` takes the folder like any run (no training time of its own)
    summary = {"soup": training["soup"], "epochs_completed": None, "train_seconds": None, "model_folder": str(output)}
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("averaged %d models into %s", len(members), output / "model")
    return output
