"""Validation figures of single models and of their average (the distillation teacher), with and without flip TTA.

Used to decide whether an ensemble is worth distilling into the shipped model; validation split only.

    python benchmarks/ensemble_val.py runs/mnv2_128_dldl runs/lite0_128_dldl
    python benchmarks/ensemble_val.py runs/a runs/b --split-file runs/a/split.json --output benchmarks/results/x.json

Every run folder holds ``model/`` and ``split.json``; all must share one split. Writes JSON and a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from common import publish_result

from agegender.data.dataset import decode_all
from agegender.data.readers import read_dataset
from agegender.data.splits import split_records
from agegender.evaluation.metrics import compute_metrics
from agegender.inference.engine import TorchEngine, load_net, predict_crops

METRICS = ("mae", "rmse", "gender_acc", "gender_f1", "score")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--data", default="../shared/data/utkface")
    ap.add_argument("--split-file", type=Path, default=None, help="default: the first run's split.json")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/ensemble_val.json"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    split_file = args.split_file or args.runs[0] / "split.json"
    records = [r for r in read_dataset(args.data, progress=False).records if r.labelled]
    records = split_records(records, split_file)["val"]
    age_true = np.array([r.age for r in records])
    gender_true = np.array([r.gender for r in records])
    preds: dict[tuple[str, bool], tuple[np.ndarray, np.ndarray]] = {}
    crops, size = None, None
    for run in args.runs:
        net, _ = load_net(run / "model")
        if size != net.input_size:
            crops, size = list(decode_all(records, net.input_size, progress=True)), net.input_size
        for tta in (False, True):
            age, _, pf = predict_crops(TorchEngine(net), crops, 128, tta, progress=True)
            preds[(run.name, tta)] = (age, pf)
    rows = []
    for tta in (False, True):
        members = [(name, preds[(name, tta)]) for name in (r.name for r in args.runs)]
        members.append(("average of all", tuple(np.mean([p[i] for _, p in members], 0) for i in (0, 1))))
        for name, (age, pf) in members:
            m = compute_metrics(age_true, age, gender_true, (pf >= 0.5).astype(int))
            rows.append(
                {
                    "model": name,
                    "tta": tta,
                    **{k: round(float(m[k]), 4) for k in METRICS},
                }
            )
    result = {"split": "val", "split_file": str(split_file), "n": len(records), "rows": rows}
    md = ["| model | flip TTA | MAE | RMSE | gender acc | macro F1 | score |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [r["model"], "yes" if r["tta"] else "no"] + [f"{r[k]:.4f}" for k in METRICS]
        md.append("| " + " | ".join(cells) + " |")
    command = " ".join(["python", "benchmarks/ensemble_val.py", *argv])
    text = f"Validation split ({len(records)} faces, {split_file}); written by `{command}`\n\n" + "\n".join(md) + "\n"
    return publish_result(args.output, result, text)


if __name__ == "__main__":
    raise SystemExit(main())
