"""Faces found in group photos: grids of labelled photos as one picture, each detector against MTCNN.

A class or team photo has many faces, each a small share of the picture: where a portrait's face spans half the
photo, a class photo's spans 3-7% of it. No labelled group photos are on this machine, so the pictures are made:
``rows`` x ``cols`` photos of a split, each shrunk to a square cell, tiled onto one picture of ``width`` pixels
(every cell holds one photo's faces, at a size set by the grid). Each detector runs on each picture; its faces are
matched to MTCNN's (IoU > 0.3, as in detector_recall.py), and its time per picture is the median of
``--repeats`` runs. ``--uniform``: each cell holds one face at the same size, as in a class photo where everyone
stands in rows (each photo cut to a square of 2.2 times its largest reference face around it). Choose options on
the training split's photos, check on val:

    python benchmarks/crowd_recall.py --data ../shared/data/appa_real_train \
        --split-file benchmarks/results/wild_ft_split.json --split train \
        --detector blazeface:zoom_levels=0 --detector blazeface --output benchmarks/results/crowd_recall_train.json

Writes the JSON and a markdown table next to it. Figures, not tests.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterable
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


def portrait(image: np.ndarray, box: np.ndarray, margin: float = 2.2) -> np.ndarray:
    """The square around a face ``box`` (x1, y1, x2, y2), ``margin`` times its longer side: head and shoulders,
    black where the square leaves the photo. A pixel copy, not ``faces.align.crop_from_box``'s resampled chip
    (framed by the box's area): with that cut, the threshold figures in the README came out otherwise."""
    side = int(round(margin * max(box[2] - box[0], box[3] - box[1])))
    x0, y0 = (int(round((box[0] + box[2] - side) / 2)), int(round((box[1] + box[3] - side) / 2)))
    out = np.zeros((side, side, 3), np.uint8)
    h, w = image.shape[:2]
    sx, sy, ex, ey = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if ex > sx and ey > sy:
        out[sy - y0 : ey - y0, sx - x0 : ex - x0] = image[sy:ey, sx:ex]
    return out


def portraits(images: Iterable[np.ndarray], spec: str, need: int) -> list[np.ndarray]:
    """The first ``need`` photos in which detector ``spec`` finds a face, each cut around its largest face."""
    detector = create_detector(spec)
    out = []
    for image in images:
        found = detector.detect(image)
        if found:
            box = max((np.asarray(d.box, float) for d in found), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
            out.append(portrait(image, box))
        if len(out) == need:
            break
    return out


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
    size = (
        "each cell is one face, cut to 2.2 times its side: every face in a picture is about 45% of its cell"
        if result.get("uniform")
        else "a photo's face spans about a third to a half of its cell"
    )
    lines += ["", f"Face size: the cell's side is the picture's width over the columns; {size}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = detector_comparison_parser(__doc__, "benchmarks/results/crowd_recall.json")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per picture (median)")
    ap.add_argument("--uniform", action="store_true", help="one face a cell, all of one size (a class photo)")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    records = labelled_records(args.data, args.split_file, args.split)
    need = max(r * c for r, c, _ in GRIDS)
    if len(records) < need:
        ap.error(f"{need} photos are needed for the largest grid; the split has {len(records)}")
    if args.uniform:
        images = portraits((load_image(r.path) for r in records), args.reference, need)
        if len(images) < need:
            ap.error(f"{need} photos with a face are needed for the largest grid; the split has {len(images)}")
    else:
        images = [load_image(r.path) for r in records[:need]]
    pictures = [montage(images, r, c, w) for r, c, w in GRIDS]
    reference, ref_ms = run(args.reference, pictures, args.repeats)
    result: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/crowd_recall.py", *argv]),
        "data": args.data,
        "split": args.split,
        "uniform": args.uniform,
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
