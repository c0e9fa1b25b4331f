"""Faces found in group photos: grids of labelled photos as one picture, each detector against MTCNN.

A class or team photo has many faces, each a small share of the picture: where a portrait's face spans half the
photo, a class photo's spans 3-7% of it. No labelled group photos are on this machine, so the pictures are made:
``rows`` x ``cols`` photos of a split, each shrunk to a square cell, tiled onto one picture of ``width`` pixels
(every cell holds one photo's faces, at a size set by the grid). Each detector runs on each picture; its faces are
matched to MTCNN's (IoU > 0.3, as in detector_recall.py), and its time per picture is the median of
``--repeats`` runs. Choose options on the training split's photos, check on val:

    python benchmarks/crowd_recall.py --data ../shared/data/appa_real_train \
        --split-file benchmarks/results/wild_ft_split.json --split train \
        --detector blazeface:zoom_levels=0 --detector blazeface --output benchmarks/results/crowd_recall_train.json

Writes the JSON and a markdown table next to it. Figures, not tests.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import cv2
import numpy as np
from common import detector_comparison_parser, publish_result
from detector_recall import compare
from wild_e2e import labelled_records

from agegender.data.images import load_image
from agegender.faces import create_detector

#: (rows, cols, picture width): faces from about 15% down to about 3% of the picture's width
GRIDS = ((2, 3, 960), (3, 5, 1280), (4, 6, 1280), (6, 9, 1280), (8, 12, 1600))


def montage(images: list[np.ndarray], rows: int, cols: int, width: int) -> np.ndarray:
    """``rows`` x ``cols`` of ``images`` (in order), each resized to a square cell, as one RGB picture."""
    cell = width // cols
    picture = np.zeros((rows * cell, cols * cell, 3), np.uint8)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        picture[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = cv2.resize(
            images[i], (cell, cell), interpolation=cv2.INTER_AREA
        )
    return picture


def run(spec: str, pictures: list[np.ndarray], repeats: int) -> tuple[list[np.ndarray], list[float]]:
    """Each picture's face boxes with detector ``spec`` and its median time (ms) over ``repeats`` runs."""
    detector = create_detector(spec)
    boxes, times = [], []
    for picture in pictures:
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            found = detector.detect(picture)
            runs.append((time.perf_counter() - start) * 1000)
        boxes.append(np.array([d.box for d in found], float).reshape(-1, 4))
        times.append(statistics.median(runs))
    return boxes, times


def markdown(result: dict[str, Any]) -> str:
    grids = result["grids"]
    head = " | ".join(f"{g['rows']}x{g['cols']}, {g['width']} px" for g in grids)
    lines = [
        f"Faces found in made-up group pictures ({result['split']} split photos of {result['data']}, each grid "
        f"filled in split order) against `{result['reference']}`; cells: faces found (matched to "
        f"{result['reference']}'s, IoU > 0.3) / ms per picture, median of {result['repeats']} "
        f"(`{result['command']}`)",
        "",
        "| detector | " + head + " | all: found / matched |",
        "|---|" + "---|" * len(grids) + "---|",
    ]
    for r in result["detectors"]:
        cells = " | ".join(f"{f} ({m}) / {ms:.0f}" for f, m, ms in zip(r["found"], r["matched"], r["ms"], strict=True))
        lines.append(f"| {r['detector']} | {cells} | {sum(r['found'])} / {sum(r['matched'])} |")
    lines += [
        "",
        "Face size: the cell's side is the picture's width over the columns; a photo's face spans about "
        "a third to a half of its cell.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = detector_comparison_parser(__doc__, "benchmarks/results/crowd_recall.json")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per picture (median)")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    records = labelled_records(args.data, args.split_file, args.split)
    need = max(r * c for r, c, _ in GRIDS)
    if len(records) < need:
        ap.error(f"{need} photos are needed for the largest grid; the split has {len(records)}")
    images = [load_image(r.path) for r in records[:need]]
    pictures = [montage(images, r, c, w) for r, c, w in GRIDS]
    reference, ref_ms = run(args.reference, pictures, args.repeats)
    result: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/crowd_recall.py", *argv]),
        "data": args.data,
        "split": args.split,
        "repeats": args.repeats,
        "reference": args.reference,
        "grids": [
            {"rows": r, "cols": c, "width": w, "reference_faces": len(b)}
            for (r, c, w), b in zip(GRIDS, reference, strict=True)
        ],
        "detectors": [],
    }
    for spec in [args.reference, *args.detector]:
        boxes, ms = (reference, ref_ms) if spec == args.reference else run(spec, pictures, args.repeats)
        matched = [len(compare([ref], [got])["matched"]) for ref, got in zip(reference, boxes, strict=True)]
        row = {"detector": spec, "found": [len(b) for b in boxes], "matched": matched, "ms": ms}
        result["detectors"].append(row)
        print(f"{spec}: found {row['found']}, matched {matched}, ms {[round(m) for m in ms]}")
    text = markdown(result)
    return publish_result(args.output, result, text)


if __name__ == "__main__":
    raise SystemExit(main())
