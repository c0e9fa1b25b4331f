"""Models end to end on changed copies of labelled photos: smaller (faces shrink) and grey (old scans).

Stand-ins for photo sets not on this machine (low-resolution web faces, scanned photos of children): the same
photos as ``benchmarks/wild_e2e.py`` (chosen by a split file), written as lossless PNG copies scaled by
``scale=F`` (INTER_AREA) or turned grey (``grey``), then run through the whole pipeline. For each model and
variant: photos with an estimate, MAE, gender accuracy, the gender accuracy of faces flagged ``small``, and the
MAE and mean signed error (> 0: too old) of people under 20.

    python benchmarks/photo_variants.py /tmp/old_default agegender/models/default \
        --data ../shared/data/appa_real_train --split-file benchmarks/results/wild_ft_split.json --split val \
        --variant original --variant scale=0.5 --variant scale=0.35 --variant grey \
        --output benchmarks/results/photo_variants_val.json

Writes JSON and a markdown table beside it. Figures, not tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from wild_e2e import _fmt, labelled_records

from agegender import Predictor
from agegender.data.images import load_image
from agegender.data.records import FaceRecord
from agegender.evaluation.photos import evaluate_photos
from agegender.faces import create_detector
from agegender.inference.batch import write_result


def changed(image: np.ndarray, variant: str) -> np.ndarray:
    """``original``, ``grey`` or ``scale=F`` applied to an RGB image."""
    if variant == "original":
        return image
    if variant == "grey":
        return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if variant.startswith("scale="):
        f = float(variant.split("=", 1)[1])
        h, w = image.shape[:2]
        return cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    raise ValueError(f"unknown variant {variant!r}: original, grey or scale=F")


def write_variant(records: list[FaceRecord], variant: str, folder: Path) -> list[FaceRecord]:
    """Lossless copies of the photos, changed; records pointing at them (labels kept)."""
    out = []
    for i, rec in enumerate(records):
        path = folder / f"{i:05d}.png"
        Image.fromarray(changed(load_image(rec.path), variant)).save(path)
        out.append(dataclasses.replace(rec, path=path))
    return out


def figures(result: dict[str, Any]) -> dict[str, Any]:
    rows = result["rows"]
    small = [r for r in rows if "small" in r["reasons"]]
    young = [r for r in rows if r["age_true"] < 20]

    def right(r: dict) -> bool:
        return (r["p_female"] >= 0.5) == bool(r["gender_true"])

    return {
        "photos": result["photos"],
        "estimated": result["estimated"],
        "mae": result["overall"].get("mae"),
        "gender_acc": result["overall"].get("gender_acc"),
        "small_flagged": len(small),
        "small_gender_acc": float(np.mean([right(r) for r in small])) if small else None,
        "under_20": len(young),
        "under_20_mae": float(np.mean([abs(r["age"] - r["age_true"]) for r in young])) if young else None,
        "under_20_bias": float(np.mean([r["age"] - r["age_true"] for r in young])) if young else None,
    }


def markdown(table: list[dict], command: str) -> str:
    lines = [
        f"Changed copies of {table[0]['photos']} labelled photos, end to end (`{command}`)",
        "",
        "| variant | model | photos with an estimate | MAE | gender acc | faces flagged small: n, gender acc "
        "| under 20: n, MAE, mean signed error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table:
        lines.append(
            f"| {r['variant']} | {r['model']} | {r['estimated']} / {r['photos']} | {_fmt(r['mae'], '.2f')} | "
            f"{_fmt(r['gender_acc'], '.1%')} | {r['small_flagged']}, {_fmt(r['small_gender_acc'], '.1%')} | "
            f"{r['under_20']}, {_fmt(r['under_20_mae'], '.2f')}, {_fmt(r['under_20_bias'], '+.1f')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model folders ('default' for the shipped model)")
    ap.add_argument("--data", required=True, help="labelled photos (folder with labels.csv, manifest, ...)")
    ap.add_argument("--split-file", help="split file choosing the photos (default: all photos)")
    ap.add_argument("--split", default="val", choices=["train", "val", "test"])
    ap.add_argument("--variant", action="append", required=True, help="original, grey or scale=F (repeat)")
    ap.add_argument("--detector", default="auto", help="NAME[:key=value,...] for every model (as detectors.py)")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/photo_variants_val.json"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    for v in args.variant:
        changed(np.zeros((4, 4, 3), np.uint8), v)  # an unknown variant fails before any work
    records = labelled_records(args.data, args.split_file, args.split)
    predictors = {
        m: Predictor.load(None if m == "default" else m, detector=create_detector(args.detector)) for m in args.models
    }
    table = []
    for variant in args.variant:
        with tempfile.TemporaryDirectory() as tmp:
            copies = write_variant(records, variant, Path(tmp))
            for model, predictor in predictors.items():
                row = {"variant": variant, "model": model, **figures(evaluate_photos(predictor, copies))}
                table.append(row)
                print(f"{variant} {model}: {row['estimated']}/{row['photos']}, MAE {_fmt(row['mae'], '.2f')}")
    command = " ".join(["python", "benchmarks/photo_variants.py", *argv])
    text = markdown(table, command)
    write_result(args.output, {"command": command, "detector": args.detector, "rows": table}, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
