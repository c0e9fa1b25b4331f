"""Model-selection table: one row per trained candidate (accuracy on val and test, training cost, speed)."""

from __future__ import annotations

import json
from pathlib import Path

from agegender.benchmarks.speed import benchmark_speed
from agegender.evaluation.evaluate import evaluate_model
from agegender.models.folder import ModelFolderError, read_config
from agegender.training.package import trained_on_val

COLUMNS = [
    "name",
    "backbone",
    "input_size",
    "age_head",
    "epochs",
    "s_per_epoch",
    "params_m",
    "val_mae",
    "val_score",
    "test_mae",
    "test_rmse",
    "test_gender_acc",
    "test_f1",
    "test_score",
    "test_under13_mae",
    "test_under13_acc",
    "test_60plus_mae",
    "test_60plus_acc",
    "onnx_faces_per_s",
]


def _pooled(bands: dict, names: list[str]) -> tuple[float | None, float | None]:
    """MAE and gender accuracy over several age bands (weighted by their sizes); None when they are empty."""
    parts = [bands[n] for n in names if n in bands and bands[n].get("n")]
    n = sum(p["n"] for p in parts)
    if not n:
        return None, None
    mae = sum(p["mae"] * p["n"] for p in parts) / n
    acc = sum(p["gender_acc"] * p["n"] for p in parts) / n
    return round(mae, 3), round(acc, 4)


def _per_epoch(summary: dict) -> float | None:
    """Training seconds per epoch; None for runs that were not trained (a weight average)."""
    if not summary.get("epochs_completed") or summary.get("train_seconds") is None:
        return None
    return round(summary["train_seconds"] / summary["epochs_completed"], 1)


def candidate_row(run_dir: str | Path, data: str | Path, name: str | None = None, test: bool = True) -> dict:
    """Evaluate a finished run folder (``<run>/model`` + ``<run>/split.json`` + ``<run>/summary.json``)."""
    run = Path(run_dir)
    if not (run / "summary.json").is_file():
        raise ModelFolderError(f"{run} is not a finished run folder: {run / 'summary.json'} is missing")
    summary = json.loads((run / "summary.json").read_text())
    model = run / "model"
    config = read_config(model)
    cfg = config["model"]
    recipe = config.get("training", {}).get("recipe", {})
    # A refit trained on the validation split: its validation figures would only measure memorisation. A fine-tune
    # (model.init) may start from such a refit (the shipped model is one): its validation split is not held out
    # either, so it is compared on other data (e.g. benchmarks/wild_e2e.py), not here.
    seen_val = trained_on_val(recipe) or bool((recipe.get("model") or {}).get("init"))
    val = None if seen_val else evaluate_model(model, data, split="val", split_file=run / "split.json", progress=False)
    row = {
        "name": name or run.name,
        "backbone": cfg["backbone"],
        "input_size": cfg["input_size"],
        "age_head": cfg["age_head"],
        "epochs": summary.get("epochs_completed"),
        "s_per_epoch": _per_epoch(summary),
        "val_mae": None if val is None else round(val["overall"]["mae"], 3),
        "val_score": None if val is None else round(val["overall"]["score"], 4),
    }
    from agegender.inference.engine import load_net

    net, _ = load_net(model)
    row["params_m"] = round(sum(p.numel() for p in net.parameters()) / 1e6, 2)
    if test:
        res = evaluate_model(model, data, split="test", split_file=run / "split.json", progress=False)
        t = res["overall"]
        row.update(
            test_mae=round(t["mae"], 3),
            test_rmse=round(t["rmse"], 3),
            test_gender_acc=round(t["gender_acc"], 4),
            test_f1=round(t["gender_f1"], 4),
            test_score=round(t["score"], 4),
        )
        bands = res["slices"]["age_band"]
        row["test_under13_mae"], row["test_under13_acc"] = _pooled(bands, ["0-12"])
        row["test_60plus_mae"], row["test_60plus_acc"] = _pooled(bands, ["60-69", "70+"])
    speed = benchmark_speed(model, ("onnx",), repeats=5)
    row["onnx_faces_per_s"] = speed["backends"]["onnx"]["faces_per_s_batched"]
    return row


def update_table(row: dict, out_json: str | Path) -> str:
    """Add or replace the row (by name) in the JSON table and rewrite its markdown twin; returns the markdown."""
    from agegender.inference.batch import atomic_write_text

    out_json = Path(out_json)
    rows = json.loads(out_json.read_text()) if out_json.is_file() else []
    rows = [r for r in rows if r["name"] != row["name"]] + [row]
    atomic_write_text(out_json, json.dumps(rows, indent=2) + "\n")
    md = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    md += ["| " + " | ".join("-" if r.get(c) is None else str(r[c]) for c in COLUMNS) + " |" for r in rows]
    text = "\n".join(md) + "\n"
    atomic_write_text(out_json.with_suffix(".md"), text)
    return text
