"""``agegender evaluate``: every metric, overall and per slice, for any model on any labelled data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agegender.data.dataset import decode_all
from agegender.data.readers import read_dataset, require_labels
from agegender.data.records import DataError, Reading
from agegender.data.splits import split_records
from agegender.inference.engine import TorchEngine, load_net, predict_crops
from agegender.metrics import compute_metrics, compute_slices
from agegender.models.folder import DEFAULT_MODEL_DIR


def _default_split_file(model: str | Path | None) -> Path | None:
    """The split a model was trained with: beside its folder (or its checkpoint's run folder)."""
    model = Path(model) if model is not None else DEFAULT_MODEL_DIR
    for cand in (model / "split.json", model.parent / "split.json", model.parent.parent / "split.json"):
        if cand.is_file():
            return cand
    return None


@dataclass
class Evaluation:
    """Metrics (``result``), per-image predictions for reports, and the reading (what was excluded)."""

    result: dict
    predictions: dict
    reading: Reading


def run_evaluation(
    model: str | Path | None,
    data: str | Path,
    fmt: str = "auto",
    split: str = "test",
    split_file: str | Path | None = None,
    batch_size: int = 128,
    tta: bool = False,
    progress: bool = True,
) -> Evaluation:
    """Evaluate without writing anything, so callers decide where (and how safely) outputs go."""
    require_labels(data, fmt)
    net, meta = load_net(model)
    reading = read_dataset(data, fmt, progress=progress)
    records = [r for r in reading.records if r.labelled]
    if not records:
        raise DataError(f"{data}: no labelled images to evaluate on")
    if split != "all":
        split_file = split_file or _default_split_file(model)
        if split_file is None:
            print(f"note: no split file given or found next to the model; using a fresh split of {data}")
        records = split_records(records, split_file)[split]
        if not records:
            raise DataError(f"the {split} split of {data} is empty")
    engine = TorchEngine(net)
    crops = decode_all(records, net.input_size, progress)
    age, std, pf = predict_crops(engine, list(crops), batch_size, tta, progress)
    at = np.array([r.age for r in records])
    gt = np.array([r.gender for r in records])
    gp = (pf >= 0.5).astype(int)
    result = {
        "model": str(model) if model else "default",
        "data": str(data),
        "split": split,
        "split_file": str(split_file) if split_file else None,
        "tta": tta,
        "overall": compute_metrics(at, age, gt, gp),
        "slices": compute_slices(at, age, gt, gp, [r.race for r in records]),
        "read_report": reading.report.to_dict(),
    }
    preds = {
        "age_true": at,
        "age_pred": age,
        "age_std": std,
        "gender_true": gt,
        "p_female": pf,
        "race": [r.race for r in records],
        "paths": [str(r.path) for r in records],
    }
    return Evaluation(result, preds, reading)


def evaluate_model(
    model: str | Path | None,
    data: str | Path,
    fmt: str = "auto",
    split: str = "test",
    split_file: str | Path | None = None,
    batch_size: int = 128,
    tta: bool = False,
    report_dir: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """:func:`run_evaluation`, then the report folder when ``report_dir`` is given; returns the metrics."""
    ev = run_evaluation(model, data, fmt, split, split_file, batch_size, tta, progress)
    if report_dir is not None:
        from agegender.inference.report import write_report

        write_report(ev.result, ev.predictions, Path(report_dir))
    return ev.result
