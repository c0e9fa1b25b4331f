"""Lightning ``.ckpt`` files read without Lightning: a broken-file check and the network's weights.

Inference, fine-tuning (``model.init``) and ``train --resume`` all read checkpoints; keeping this here (not in
``agegender.training``) lets inference load a checkpoint without importing the training stack.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from agegender.errors import AgeGenderError

__all__ = ["CheckpointError", "check_checkpoint", "read_checkpoint"]


class CheckpointError(AgeGenderError):
    """A checkpoint file that cannot be read (empty, truncated or corrupt); the message says what to do."""


def check_checkpoint(path: Path) -> None:
    """Fail with the file's name and a way out when ``path`` is not a complete checkpoint.

    Checkpoints are zip archives (torch.save); a run killed while writing leaves an empty or truncated file,
    which torch would report as a bare EOFError or "failed finding central directory". Cheap: the central
    directory is read and every member's CRC checked, without unpickling anything.
    """
    problem = None
    try:
        if path.stat().st_size == 0:
            problem = "it is empty (0 bytes)"
        elif not zipfile.is_zipfile(path):
            problem = "it is truncated or not a checkpoint"
        else:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            problem = f"its member {bad} is corrupt" if bad else None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        problem = f"it cannot be read ({e})"
    if problem:
        others = sorted(p.name for p in path.parent.glob("*.ckpt") if p != path)
        other = f", or copy one of {', '.join(others)} over it to resume from there" if others else ""
        raise CheckpointError(
            f"checkpoint {path} is broken: {problem} (probably the run was stopped while saving it). "
            f"Delete it (train --resume then starts from scratch){other}."
        )


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict]:
    """The network's weights (``net.*`` entries, prefix removed) and model settings saved in a ``.ckpt``."""
    import torch

    path = Path(path)
    check_checkpoint(path)
    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    state = {k[len("net.") :]: v for k, v in ckpt.get("state_dict", {}).items() if k.startswith("net.")}
    model = (ckpt.get("hyper_parameters") or {}).get("model") or {}
    return state, dict(model)
