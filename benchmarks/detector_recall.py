"""Which faces each detector finds, face by face, against a reference detector (MTCNN by default).

"Faces found" alone hides what differs: a detector can find more faces and still miss real ones, or match a count
with false faces. Here every face a detector finds is matched to the reference's faces of the same photo (box
IoU > 0.3): matched faces, the reference's faces it misses and the faces only it finds are counted per face size
(shorter box side in photo pixels: < 30, 30-60, >= 60), and ``--sheet DIR`` draws every missed and extra face
into one picture per detector, so that a person can see which of them are faces at all (both detectors have
false ones). Photos are chosen by a split file; the detectors never trained on any of them, so the training
split, the largest, is where options are chosen and the validation split where they are checked:

    python benchmarks/detector_recall.py --data ../shared/data/appa_real_train \
        --split-file benchmarks/results/wild_ft_split.json --split train \
        --detector blazeface:weak_threshold=1 --detector blazeface --sheet benchmarks/results/detector_recall \
        --output benchmarks/results/detector_recall_train.json

Writes the JSON and a markdown table next to it. Figures, not tests.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from common import detector_comparison_parser, publish_result
from tqdm.auto import tqdm
from wild_e2e import labelled_records

from agegender.data.images import load_image
from agegender.faces import create_detector

SIZES = ((0, 30, "< 30 px"), (30, 60, "30-60 px"), (60, 1e9, ">= 60 px"))
TILE = 128


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), as an (N, M) array."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def compare(reference: list[np.ndarray], found: list[np.ndarray], threshold: float = 0.3) -> dict[str, list]:
    """Per photo, the boxes of ``found`` matched to ``reference`` (IoU > ``threshold``, greedy by overlap), the
    reference's boxes left unmatched (missed) and ``found``'s left unmatched (extra): lists of (photo, box)."""
    out: dict[str, list] = {"matched": [], "missed": [], "extra": []}
    for photo, (ref, got) in enumerate(zip(reference, found, strict=True)):
        overlap = iou(ref, got)
        free_ref, free_got = set(range(len(ref))), set(range(len(got)))
        for i, j in sorted(np.argwhere(overlap > threshold).tolist(), key=lambda ij: -overlap[ij[0], ij[1]]):
            if i in free_ref and j in free_got:
                free_ref.discard(i)
                free_got.discard(j)
                out["matched"].append((photo, got[j]))
        out["missed"] += [(photo, ref[i]) for i in sorted(free_ref)]
        out["extra"] += [(photo, got[j]) for j in sorted(free_got)]
    return out


def by_size(items: list[tuple[int, np.ndarray]]) -> dict[str, int]:
    """How many boxes fall in each of :data:`SIZES` (shorter side)."""
    sides = [min(b[2] - b[0], b[3] - b[1]) for _, b in items]
    return {name: sum(1 for s in sides if lo <= s < hi) for lo, hi, name in SIZES}


def detect_all(spec: str, paths: list[Path], progress: bool = True) -> tuple[list[np.ndarray], list[list[float]]]:
    """Every photo's face boxes (N, 4) and scores as ``agegender predict`` finds them with detector ``spec``."""
    detector = create_detector(spec)  # a NAME:key=value spec, as --detector takes it
    boxes, scores = [], []
    for path in tqdm(paths, desc=spec, disable=not progress, leave=False):
        found = detector.detect(load_image(path))
        boxes.append(np.array([d.box for d in found], float).reshape(-1, 4))
        scores.append([round(float(d.score), 3) for d in found])
    return boxes, scores


def contact_sheet(paths: list[Path], rows: list[tuple[str, list[tuple[int, np.ndarray]]]], out: Path) -> None:
    """One picture: per row label (e.g. "missed"), each face with a margin, its size written on it."""
    lines = []
    for label, items in rows:
        tiles = []
        for photo, box in items:
            image = cv2.imread(str(paths[photo]))
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            m = int(0.3 * max(x2 - x1, y2 - y1))
            crop = image[max(0, y1 - m) : max(1, y2 + m), max(0, x1 - m) : max(1, x2 + m)]
            tile = cv2.resize(crop, (TILE, TILE)) if crop.size else np.zeros((TILE, TILE, 3), np.uint8)
            cv2.putText(tile, f"{min(x2 - x1, y2 - y1)}px", (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
            tiles.append(tile)
        head = np.zeros((20, TILE * 10, 3), np.uint8)
        cv2.putText(head, f"{label}: {len(items)}", (3, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        lines.append(head)
        for start in range(0, len(tiles), 10):
            row = tiles[start : start + 10]
            row += [np.zeros((TILE, TILE, 3), np.uint8)] * (10 - len(row))
            lines.append(np.hstack(row))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(lines))


def markdown(result: dict[str, Any]) -> str:
    sizes = [name for _, _, name in SIZES]
    lines = [
        f"Faces found on {result['photos']} photos ({result['split']} split of {result['split_file']}) against "
        f"`{result['reference']}` ({result['reference_faces']} faces: {_sizes(result['reference_sizes'])}); "
        f"matched: IoU > 0.3 (`{result['command']}`)",
        "",
        "| detector | faces found | matched | missed: " + " / ".join(sizes) + " | extra: " + " / ".join(sizes) + " |",
        "|---|---|---|---|---|",
    ]
    for r in result["detectors"]:
        lines.append(
            f"| {r['detector']} | {r['faces']} | {r['matched']} | {r['missed']} ({_sizes(r['missed_sizes'])}) | "
            f"{r['extra']} ({_sizes(r['extra_sizes'])}) |"
        )
    if result.get("sheets"):
        lines += ["", "Missed and extra faces, drawn: " + ", ".join(f"`{s}`" for s in result["sheets"])]
    return "\n".join(lines) + "\n"


def _sizes(counts: dict[str, int]) -> str:
    return " / ".join(str(v) for v in counts.values())


def _slug(spec: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in spec)


def main(argv: list[str] | None = None) -> int:
    ap = detector_comparison_parser(__doc__, "benchmarks/results/detector_recall.json")
    ap.add_argument("--sheet", type=Path, help="folder for one picture per detector of its missed and extra faces")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    paths = [r.path for r in labelled_records(args.data, args.split_file, args.split)]
    reference, _ = detect_all(args.reference, paths)
    ref_items = [(p, b) for p, boxes in enumerate(reference) for b in boxes]
    result: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/detector_recall.py", *argv]),
        "data": args.data,
        "split_file": args.split_file,
        "split": args.split,
        "photos": len(paths),
        "reference": args.reference,
        "reference_faces": len(ref_items),
        "reference_sizes": by_size(ref_items),
        "detectors": [],
        "sheets": [],
    }
    for spec in args.detector:
        boxes, scores = detect_all(spec, paths)
        match = compare(reference, boxes)
        row = {
            "detector": spec,
            "faces": sum(len(b) for b in boxes),
            "matched": len(match["matched"]),
            "missed": len(match["missed"]),
            "extra": len(match["extra"]),
            "missed_sizes": by_size(match["missed"]),
            "extra_sizes": by_size(match["extra"]),
            "missed_faces": [[str(paths[p]), [round(float(v), 1) for v in b]] for p, b in match["missed"]],
            "extra_faces": [[str(paths[p]), [round(float(v), 1) for v in b]] for p, b in match["extra"]],
        }
        result["detectors"].append(row)
        if args.sheet:
            sheet = args.sheet / f"{args.split}_{_slug(spec)}.jpg"
            contact_sheet(paths, [("missed", match["missed"]), ("extra", match["extra"])], sheet)
            result["sheets"].append(str(sheet))
        print(f"{spec}: {row['faces']} faces, {row['matched']} matched, {row['missed']} missed, {row['extra']} extra")
    text = markdown(result)
    return publish_result(args.output, result, text)


if __name__ == "__main__":
    raise SystemExit(main())
