"""How much the answer for a photo depends on details of the face search that should not matter.

MTCNN seeks faces over an image pyramid whose first step follows from ``min_face_size``; shifting it by a
fraction of a step finds the same faces, but O-net places the five landmarks anew for each candidate box, and
the age read from the aligned chip moves with them. For each detector spec this runs the wild photos end to end
once per pyramid (``min_face_size`` in --min-face-sizes, which covers one step of 0.709 from 20 px) and reports:
MAE and gender accuracy per pyramid and their mean; the spread of each photo's age over the pyramids (mean
standard deviation, photos whose ages span more than 2 years) and photos whose gender changes. Same model, same
photos; only the search differs:

    python benchmarks/landmark_stability.py --data ../shared/data/appa_real_train \
        --split-file benchmarks/results/wild_ft_split.json --split val \
        --detector mtcnn:landmark_vote=False --detector mtcnn \
        --output benchmarks/results/landmark_stability_val.json

Writes JSON and a markdown table. Figures, not tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from common import publish_result
from detectors import load_spec
from wild_e2e import labelled_records

from agegender.evaluation.photos import evaluate_photos

MIN_FACE_SIZES = (20.0, 22.2, 24.6, 27.4)  # 20 / 0.709 ** (k / 4), k = 0..3: a quarter step apart


def stability(runs: list[dict[str, dict]]) -> dict[str, Any]:
    """Spread of the answers over runs of the same photos: only photos with an estimate in every run count."""
    paths = [p for p in runs[0] if all(r.get(p, {}).get("age") is not None for r in runs)]
    ages = np.array([[r[p]["age"] for r in runs] for p in paths])
    female = np.array([[r[p]["p_female"] >= 0.5 for r in runs] for p in paths])
    truth = np.array([runs[0][p]["age_true"] for p in paths])
    span = ages.max(1) - ages.min(1)
    return {
        "photos": len(paths),
        "mean_sd_years": round(float(ages.std(1).mean()), 3),
        "photos_span_over_2y": int((span > 2).sum()),
        "max_span_years": round(float(span.max()), 1) if len(paths) else None,
        "gender_changes": int((female.any(1) & ~female.all(1)).sum()),
        "mae_mean_over_runs": round(float(np.abs(ages - truth[:, None]).mean()), 3),
    }


def markdown(result: dict[str, Any]) -> str:
    sizes = result["min_face_sizes"]
    lines = [
        f"The same photos and model, MTCNN's pyramid shifted by min_face_size = {', '.join(map(str, sizes))} "
        f"({result['photos']} photos, `{result['command']}`)",
        "",
        "| detector | MAE per pyramid | MAE, all runs (photos with an estimate in all) | gender acc per pyramid "
        "| age SD over pyramids (mean) "
        "| photos whose ages span > 2 y | photos whose gender changes |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec, r in result["detectors"].items():
        s = r["stability"]
        maes = " / ".join(f"{m['mae']:.2f}" for m in r["per_pyramid"])
        genders = " / ".join(f"{100 * m['gender_acc']:.1f}%" for m in r["per_pyramid"])
        lines.append(
            f"| {spec} | {maes} | {s['mae_mean_over_runs']:.3f} | {genders} | {s['mean_sd_years']:.2f} "
            f"| {s['photos_span_over_2y']} / {s['photos']} | {s['gender_changes']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="labelled photos (APPA-REAL)")
    ap.add_argument("--split-file", required=True)
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--detector", action="append", required=True, help="NAME[:key=value,...] (repeat)")
    ap.add_argument("--min-face-sizes", type=float, nargs="+", default=list(MIN_FACE_SIZES))
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/landmark_stability_val.json"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    records = labelled_records(args.data, args.split_file, args.split)
    detectors: dict[str, Any] = {}
    for spec in args.detector:
        runs, per_pyramid = [], []
        for size in args.min_face_sizes:
            sep = "," if ":" in spec else ":"
            res = evaluate_photos(load_spec(f"{spec}{sep}min_face_size={size}"), records, progress=False)
            runs.append({row["path"]: row for row in res["rows"]})
            o = res["overall"]
            per_pyramid.append({"min_face_size": size, "estimated": res["estimated"], **o})
            print(f"{spec}, min_face_size {size}: MAE {o['mae']:.3f}, gender {o['gender_acc']:.4f}", flush=True)
        detectors[spec] = {"per_pyramid": per_pyramid, "stability": stability(runs)}
    result = {
        "command": " ".join(["python", "benchmarks/landmark_stability.py", *argv]),
        "split": args.split,
        "photos": len(records),
        "min_face_sizes": args.min_face_sizes,
        "detectors": detectors,
    }
    text = markdown(result)
    return publish_result(args.output, result, text)


if __name__ == "__main__":
    raise SystemExit(main())
