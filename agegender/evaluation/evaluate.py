"""``agegender evaluate``: every metric, overall and per slice, for any model on any labelled data."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agegender.data.dataset import decode_all
from agegender.data.names import dataset_name, unique_names
from agegender.data.readers import read_dataset, require_labels
from agegender.data.records import DataError, Reading
from agegender.data.splits import split_sources
from agegender.evaluation.metrics import compute_metrics, compute_slices
from agegender.inference.engine import TorchEngine, load_net, predict_crops
from agegender.models.folder import DEFAULT_MODEL_DIR

log = logging.getLogger(__name__)


def default_split_file(model: str | Path | None) -> Path | None:
    """The split a model was trained with: beside its folder (or its checkpoint's run folder)."""
    model = Path(model) if model is not None else DEFAULT_MODEL_DIR
    for cand in (model / "split.json", model.parent / "split.json", model.parent.parent / "split.json"):
        if cand.is_file():
            return cand
    return None


@dataclass
class Evaluation:
    """Metrics (``result``), per-image predictions for reports, and each source's reading (what was excluded)."""

    result: dict
    predictions: dict
    readings: list[Reading]

    @property
    def reading(self) -> Reading:
        """The first source's reading (the only one for a single dataset)."""
        return self.readings[0]


def _source_names(data: Sequence[str | Path]) -> list[str]:
    """Unique short names for the datasets, as training names its sources."""
    return unique_names([dataset_name(d) for d in data])


def run_evaluation(
    model: str | Path | None,
    data: str | Path | Sequence[str | Path],
    fmt: str = "auto",
    split: str = "test",
    split_file: str | Path | None = None,
    batch_size: int = 128,
    tta: bool = False,
    progress: bool = True,
) -> Evaluation:
    """Evaluate without writing anything, so callers decide where (and how safely) outputs go.

    ``data`` may name several datasets: each is split on its own (as in training) and the result has the
    figures overall and per source (``slices["source"]``).
    """
    datasets = [data] if isinstance(data, str | Path) else list(data)
    seen = [Path(d).resolve() for d in datasets]
    if len(set(seen)) < len(seen):  # each image would count twice
        raise DataError(f"the same data is given twice: {', '.join(map(str, datasets))}")
    for d in datasets:
        require_labels(d, fmt)
    net, meta = load_net(model)
    names = _source_names(datasets) if len(datasets) > 1 else ["data"]
    readings = [read_dataset(d, fmt, progress=progress) for d in datasets]
    by_source = {n: [r for r in rd.records if r.labelled] for n, rd in zip(names, readings, strict=True)}
    for d, recs in zip(datasets, by_source.values(), strict=True):
        if not recs:
            raise DataError(f"{d}: no labelled images to evaluate on")
    if split_file is not None and not Path(split_file).is_file():
        # split_sources would write a fresh split there: figures on a random split under the name of a real one
        raise DataError(f"split file {split_file} does not exist (leave out --split-file for a fresh split)")
    labelled = sum(len(recs) for recs in by_source.values())
    if split != "all":
        split_file = split_file or default_split_file(model)
        if split_file is None:
            where = ", ".join(map(str, datasets))
            log.info("note: no split file given or found next to the model; using a fresh split of %s", where)
        parts = split_sources(by_source, split_file)
        by_source = {n: parts[n][split] for n in by_source}
    records = [r for recs in by_source.values() for r in recs]
    sources = [n for n, recs in by_source.items() for _ in recs]
    if not records:
        raise DataError(
            f"the {split} split of {', '.join(map(str, datasets))} is empty ({labelled} labelled images in all); "
            "--split all evaluates on every image"
        )
    engine = TorchEngine(net)
    crops = decode_all(records, net.input_size, progress)
    age, std, pf = predict_crops(engine, list(crops), batch_size, tta, progress)
    at = np.array([r.age for r in records])
    gt = np.array([r.gender for r in records])
    gp = (pf >= 0.5).astype(int)
    slices = compute_slices(at, age, gt, gp, [r.race for r in records])
    if len(datasets) > 1:
        src = np.array(sources)
        slices["source"] = {n: compute_metrics(at[src == n], age[src == n], gt[src == n], gp[src == n]) for n in names}
    result = {
        "model": str(model) if model else "default",
        "data": str(datasets[0]) if len(datasets) == 1 else [str(d) for d in datasets],
        "split": split,
        "split_file": str(split_file) if split_file else None,
        "tta": tta,
        "overall": compute_metrics(at, age, gt, gp),
        "slices": slices,
        "read_report": readings[0].report.to_dict() if len(readings) == 1 else {},
        "read_reports": {n: rd.report.to_dict() for n, rd in zip(names, readings, strict=True)},
    }
    preds = {
        "age_true": at,
        "age_pred": age,
        "age_std": std,
        "gender_true": gt,
        "p_female": pf,
        "race": [r.race for r in records],
        "paths": [str(r.path) for r in records],
        "source": sources,
    }
    return Evaluation(result, preds, readings)


def evaluate_model(
    model: str | Path | None,
    data: str | Path | Sequence[str | Path],
    report_dir: str | Path | None = None,
    **options: Any,
) -> dict:
    """:func:`run_evaluation` (``options`` are its keywords), then the report folder when ``report_dir`` is
    given; returns the metrics."""
    ev = run_evaluation(model, data, **options)
    if report_dir is not None:
        from agegender.evaluation.report import write_report

        write_report(ev.result, ev.predictions, Path(report_dir))
    return ev.result
