"""Face detectors side by side: speed of the whole pipeline per photo, faces found and end-to-end accuracy.

Speed: photos/s is a run of the photos as ``agegender predict FOLDER`` makes it (files read two at a time,
faces of ``workers`` photos sought at once, ``workers=1``: one after another); a second, photo-by-photo pass
times each stage (decode -> detect -> align (chips and quality flags) -> network, the model on ONNX Runtime).
Each detector runs in a process of its own (as a user runs one pipeline: ONNX Runtime sessions in one process
compete for the cores), the order rotating over several repeats, so drifts in CPU speed hit them all alike;
photos/s is the median over repeats and the ratio to the first detector is the figure to compare. "small": the
first --speed-photos photos of the validation split (APPA-REAL, longer side 320 px); "large": the photos of
--wild whose longer side is at least 600 px.
Accuracy: ``evaluate_photos`` on the whole split (see benchmarks/wild_e2e.py), and on the group photo t1.jpg
the six faces and their genders. Detector specs are ``NAME[:key=value,...]``:

    python benchmarks/detectors.py --data ../shared/data/appa_real_train \
        --split-file benchmarks/results/wild_ft_split.json --wild ../shared/data/wild \
        --detector mtcnn:spin=True,workers=1 --detector mtcnn --detector blazeface

Writes benchmarks/results/detectors.{json,md}. Figures, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import publish_result
from wild_e2e import labelled_records

from agegender import Predictor
from agegender.data.images import load_image
from agegender.evaluation.photos import evaluate_photos
from agegender.faces import Detection, create_detector, extract_faces
from agegender.faces.detectors import parse_detector_spec
from agegender.inference.batch import Item, run_predictions
from agegender.inference.engine import predict_crops

STAGES = ("decode", "detect", "align", "network")
#: The six faces of t1.jpg: box centre (x, y) and gender, checked by eye (as in tests/faces/test_detectors.py).
T1_TRUTH = [
    ((960, 131), "male"),
    ((111, 328), "female"),
    ((321, 208), "female"),
    ((517, 337), "male"),
    ((791, 408), "male"),
    ((1180, 337), "female"),
]


def load_spec(spec: str) -> Predictor:
    """The shipped model on ONNX Runtime with the detector that ``spec`` names (``NAME:key=value,...``, as
    ``--detector``); the key ``workers`` is the pipeline's (photos detected at once, ``Predictor(workers=...)``)."""
    name, kwargs = parse_detector_spec(spec)
    workers = int(kwargs.pop("workers", 2))
    return Predictor.load(None, backend="onnx", detector=create_detector(name, **kwargs), workers=workers)


class _Found:
    """Stands in for a detector inside ``extract_faces``: returns detections already timed separately."""

    def __init__(self, name: str, found: list[Detection]) -> None:
        self.name, self._found = name, found

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self._found


def time_photo(predictor: Predictor, path: Path) -> dict[str, float]:
    """Seconds per stage for one photo through the whole pipeline, and the faces found."""
    t0 = time.perf_counter()
    image = load_image(path)
    t1 = time.perf_counter()
    found = predictor.detector.detect(image)
    t2 = time.perf_counter()
    faces = extract_faces(image, _Found(predictor.detector.name, found), quality_filter=predictor.quality_filter)
    crops = [f.crop for f in faces if f.estimate]
    t3 = time.perf_counter()
    if crops:
        predict_crops(predictor.engine, crops)
    t4 = time.perf_counter()
    return {"decode": t1 - t0, "detect": t2 - t1, "align": t3 - t2, "network": t4 - t3, "faces": len(found)}


def _time_all(predictor: Predictor, photos: list[Path]) -> dict[str, Any]:
    """After a warm-up, one pass over ``photos`` as ``agegender predict FOLDER`` runs it (``run_predictions``:
    files read two at a time, faces of up to ``workers`` photos sought at once): the seconds it took; then one
    pass photo by photo for faces found and ms per stage per photo."""
    time_photo(predictor, photos[0])
    items = [Item(p) for p in photos]
    t0 = time.perf_counter()
    done = list(run_predictions(predictor, items, progress=False))
    seconds = time.perf_counter() - t0
    assert len(done) == len(photos)
    rows = [time_photo(predictor, p) for p in photos]
    return {
        "seconds": seconds,
        "faces": sum(int(r["faces"]) for r in rows),
        "ms": {s: [1000 * r[s] for r in rows] for s in STAGES},
    }


def _speed_worker(spec: str, listing: Path) -> None:
    """Child process: one detector's pipeline alone, as a user runs it (no other ONNX sessions competing)."""
    predictor = load_spec(spec)
    photos = [Path(line) for line in listing.read_text().splitlines() if line]
    print(json.dumps(_time_all(predictor, photos)))


def measure_speed(specs: list[str], photos: list[Path], repeats: int) -> dict[str, dict]:
    """Each detector in a process of its own, the order rotated every repeat; photos/s median over repeats.

    Separate processes, because ONNX Runtime sessions of one process compete for the cores (a spinning detector
    slows the age network and the other detectors loaded beside it), which would blur the comparison.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(str(p) for p in photos))
    listing = Path(f.name)
    totals: dict[str, list[float]] = {n: [] for n in specs}
    stages: dict[str, dict[str, list[float]]] = {n: {s: [] for s in STAGES} for n in specs}
    faces: dict[str, int] = {}
    try:
        for r in range(repeats):
            for spec in specs[r % len(specs) :] + specs[: r % len(specs)]:
                out = subprocess.run(
                    [sys.executable, __file__, "--speed-worker", spec, "--photos-list", str(listing)],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                t = json.loads(out.strip().splitlines()[-1])
                totals[spec].append(len(photos) / t["seconds"])
                faces[spec] = t["faces"]
                for s in STAGES:
                    stages[spec][s] += t["ms"][s]
    finally:
        listing.unlink(missing_ok=True)
    base = statistics.median(totals[specs[0]])
    return {
        n: {
            "photos": len(photos),
            "photos_per_s": round(statistics.median(totals[n]), 2),
            "ratio_vs_first": round(statistics.median(totals[n]) / base, 2),
            "photos_per_s_runs": [round(v, 2) for v in totals[n]],
            "median_ms": {s: round(statistics.median(stages[n][s]), 2) for s in STAGES},
            "faces_found": faces[n],
        }
        for n in specs
    }


def together(small: dict[str, dict], large: dict[str, dict], base: str) -> dict[str, dict]:
    """Photos/s over the small and the large photos as one set, per repeat (the photos of both runs over the time of
    both), then the median; how much each detector gains depends on the share of large photos in the mix."""
    runs = {
        spec: [
            (small[spec]["photos"] + large[spec]["photos"]) / (small[spec]["photos"] / s + large[spec]["photos"] / g)
            for s, g in zip(small[spec]["photos_per_s_runs"], large[spec]["photos_per_s_runs"], strict=True)
        ]
        for spec in small
    }
    first = statistics.median(runs[base])
    return {
        spec: {
            "photos": small[spec]["photos"] + large[spec]["photos"],
            "photos_per_s": round(statistics.median(r), 2),
            "ratio_vs_first": round(statistics.median(r) / first, 2),
            "photos_per_s_runs": [round(v, 2) for v in r],
        }
        for spec, r in runs.items()
    }


def group_photo(predictor: Predictor, path: Path) -> dict[str, Any]:
    """Faces on t1.jpg, how many of the six people were found and how many got the right gender."""
    faces = predictor.predict(path)
    found = right = 0
    for (cx, cy), gender in T1_TRUTH:
        near = [
            f for f in faces if f.box and np.hypot((f.box[0] + f.box[2]) / 2 - cx, (f.box[1] + f.box[3]) / 2 - cy) < 35
        ]
        found += bool(near)
        right += bool(near) and near[0].gender == gender
    return {
        "faces": len(faces),
        "people_found": found,
        "right_gender": right,
        "flagged": sum(f.status != "ok" for f in faces),
    }


def markdown(result: dict[str, Any]) -> str:
    first = next(iter(result["detectors"]))
    lines = [
        f"Face detectors, whole pipeline on {result['cpu_count']} CPU cores, shipped model on ONNX Runtime; speed: "
        f"medians of {result['repeats']} repeats, one process per detector, order rotated, ratio against {first} "
        "in the same run "
        f"(`{result['command']}`)",
        "",
        "| detector | small: photos/s (x) | large: photos/s (x) | both: photos/s (x) "
        "| ms per photo, small: decode / detect / align / network | ms per photo, large: detect "
        "| faces found, small / large | val photos with an estimate | MAE | gender acc | flagged "
        "| t1.jpg: faces, people found, right gender |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["detectors"].items():
        s, g, e, t = r["speed"]["small"], r["speed"]["large"], r["e2e"], r["t1"]
        b = r["speed"].get("both", {"photos_per_s": "-", "ratio_vs_first": "-"})
        ms = " / ".join(f"{s['median_ms'][k]:.1f}" for k in STAGES)
        lines.append(
            f"| {name} | {s['photos_per_s']} ({s['ratio_vs_first']}x) | {g['photos_per_s']} ({g['ratio_vs_first']}x) "
            f"| {b['photos_per_s']} ({b['ratio_vs_first']}x) "
            f"| {ms} | {g['median_ms']['detect']:.1f} | {s['faces_found']} / {g['faces_found']} "
            f"| {e['estimated']} / {e['photos']} | {e['overall']['mae']:.2f} | {100 * e['overall']['gender_acc']:.1f}% "
            f"| {e['flagged']} | {t['faces']}, {t['people_found']}/6, {t['right_gender']}/6 |"
        )
    sizes = result["sets"]
    lines += [
        "",
        f"small: {sizes['small']}; large: {sizes['large']}; both: the two sets as one (each repeat's photos over "
        f"its time); val: {sizes['val']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="labelled photos (APPA-REAL)")
    ap.add_argument("--split-file", required=True)
    ap.add_argument("--split", default="val")
    ap.add_argument("--wild", required=True, type=Path, help="folder of unlabelled photos with t1.jpg")
    ap.add_argument("--detector", action="append", required=True, help="NAME[:key=value,...]; the first is the base")
    ap.add_argument("--speed-photos", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/detectors.json"))
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--speed-worker":  # a child of measure_speed
        _speed_worker(argv[1], Path(argv[3]))
        return 0
    args = ap.parse_args(argv)
    records = labelled_records(args.data, args.split_file, args.split)
    small = [Path(r.path) for r in records[: args.speed_photos]]
    large = [p for p in sorted(args.wild.iterdir()) if _longer_side(p) >= 600]
    predictors = {}
    for spec in args.detector:
        predictors[spec] = load_spec(spec)
    speed = {
        "small": measure_speed(list(args.detector), small, args.repeats),
        "large": measure_speed(list(args.detector), large, args.repeats),
    }
    speed["both"] = together(speed["small"], speed["large"], args.detector[0])
    detectors: dict[str, dict] = {}
    for spec, predictor in predictors.items():
        e2e = evaluate_photos(predictor, records, progress=False)
        e2e["faces_found"] = sum(r["faces"] for r in e2e.pop("rows"))
        detectors[spec] = {
            "speed": {k: v[spec] for k, v in speed.items()},
            "e2e": e2e,
            "t1": group_photo(predictor, args.wild / "t1.jpg"),
        }
        print(f"{spec}: {e2e['estimated']}/{e2e['photos']} estimated, MAE {e2e['overall']['mae']:.2f}", flush=True)
    result = {
        "command": " ".join(["python", "benchmarks/detectors.py", *argv]),
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "sets": {
            "small": f"first {len(small)} photos of the {args.split} split",
            "large": f"{len(large)} photos of {args.wild.name}/ with longer side >= 600 px",
            "val": f"{len(records)} photos of the {args.split} split of {args.split_file}",
        },
        "detectors": detectors,
    }
    text = markdown(result)
    return publish_result(args.output, result, text)


def _longer_side(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return max(im.size)
    except OSError:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
