"""``agegender package``: turn a finished run into a self-contained model folder with ONNX and a model card."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from agegender.evaluation.card import write_card
from agegender.evaluation.evaluate import run_evaluation
from agegender.evaluation.report import write_report
from agegender.inference.batch import atomic_write_text
from agegender.models.export import ONNX_FILE, export_onnx
from agegender.models.folder import (
    ModelFolderError,
    load_model_folder,
    read_config,
    record_fingerprints,
    replace_folder,
)
from agegender.utils.io import ensure_writable


def trained_on_val(recipe: dict) -> bool:
    """Whether a saved recipe (``config.json`` → ``training.recipe``) trained on the validation split too."""
    return bool((recipe.get("data") or {}).get("train_on_val"))


def _record_init_recipe(folder: Path) -> None:
    """A fine-tuned model's card names what it started from: keep the init folder's recipe while it still exists
    (packaging over the init folder itself, as when the default model is fine-tuned, replaces it)."""
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    model = ((cfg.get("training") or {}).get("recipe") or {}).get("model") or {}
    init = model.get("init")
    if not init or model.get("init_recipe") or not (Path(init) / "config.json").is_file():
        return
    model["init_recipe"] = (read_config(init).get("training") or {}).get("recipe") or {}
    atomic_write_text(path, json.dumps(cfg, indent=2) + "\n")


def _set_age_temperature(folder: Path, temperature: float) -> None:
    """Store the age read-out temperature in the copied config, before the network is built (which refuses a
    value <= 0, or one for a regression head) and exported."""
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    cfg["model"]["age_temperature"] = float(temperature)
    atomic_write_text(path, json.dumps(cfg, indent=2) + "\n")


def package_run(
    run_dir: str | Path,
    data: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    report_dir: str | Path | None = None,
    name: str = "agegender default",
    age_temperature: float | None = None,
    progress: bool = True,
) -> dict:
    """Copy ``<run>/model`` to ``out_dir``, add ONNX, split.json, test metrics and MODEL_CARD.md.

    ``data``: the dataset(s) it was trained on; several give test figures overall and per dataset.
    ``age_temperature``: the age read-out (see ``AgeDistributionHead``) to ship instead of the run's own;
    choose it on validation (benchmarks/age_decoding.py), as the test figures are written here.
    """
    run, out = Path(run_dir), Path(out_dir)
    read_config(run / "model")  # a clear error when run is not a finished run folder
    if not (run / "split.json").is_file():
        raise ModelFolderError(f"{run} is not a finished run folder: {run / 'split.json'} is missing")
    ensure_writable(out, kind="dir")
    if report_dir is not None:
        ensure_writable(report_dir, kind="dir")

    results: list[dict] = []

    def build(folder: Path) -> None:  # everything is written here first; the old folder is replaced at the end
        for f in ("model.safetensors", "config.json"):
            shutil.copy2(run / "model" / f, folder / f)
        shutil.copy2(run / "split.json", folder / "split.json")
        _record_init_recipe(folder)
        if age_temperature is not None:
            _set_age_temperature(folder, age_temperature)
        net = load_model_folder(folder)
        export_onnx(net, folder / ONNX_FILE)
        record_fingerprints(folder)
        ev = run_evaluation(folder, data, split="test", split_file=folder / "split.json", progress=progress)
        ev.result.update(model=str(out), split_file=str(out / "split.json"))  # where it will live, not the temp
        result = ev.result
        if report_dir is not None:
            write_report(result, ev.predictions, Path(report_dir))
        atomic_write_text(folder / "metrics.json", json.dumps(result, indent=2) + "\n")
        write_card(folder, name, params=sum(p.numel() for p in net.parameters()) / 1e6)
        results.append(result)

    replace_folder(build, out)
    return results[0]
