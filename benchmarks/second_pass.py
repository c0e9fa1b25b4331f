"""How many photos MTCNN's further searches rescue: photos with no face on the first search, and how many of those
get a face from the search of the photo turned by +-30/60/90 degrees (normal thresholds), from the relaxed search
of the framed photo, and from the detector as it runs (turned first, then relaxed).
Writes benchmarks/results/second_pass.{json,md}.

    python benchmarks/second_pass.py ../shared/data/appa_real_train \
        --split-file benchmarks/results/wild_ft_split.json --split train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from agegender.data.images import ImageError, load_image
from agegender.data.readers import read_dataset
from agegender.data.splits import split_records
from agegender.faces.detectors import MTCNNDetector
from agegender.inference.batch import write_result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="photos (any supported layout)")
    ap.add_argument("--split-file", help="only the photos of one split of this split file")
    ap.add_argument("--split", default="train", choices=["train", "val", "test"])
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/second_pass.json"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    first, both = MTCNNDetector(second_pass=False), MTCNNDetector()
    records = read_dataset(args.data, progress=False).records
    if args.split_file:
        records = split_records([r for r in records if r.labelled], args.split_file)[args.split]
    missed, rescued, turned, relaxed = [], [], [], []
    for rec in tqdm(records, desc="photos", unit="photo"):
        try:
            image = load_image(rec.path)
        except ImageError:
            continue
        if first.detect(image):
            continue
        missed.append(str(rec.path))
        if both.detect(image):
            rescued.append(str(rec.path))
        if both._search_rotated(image):
            turned.append(str(rec.path))
        if both._search_again(image):
            relaxed.append(str(rec.path))
    command = " ".join(["python", "benchmarks/second_pass.py", *argv])
    result = {
        "command": command,
        "photos": len(records),
        "missed_by_first_search": len(missed),
        "found_by_turned_search": len(turned),
        "found_by_relaxed_search": len(relaxed),
        "found_by_the_detector": len(rescued),
        "rescued": rescued,
        "turned": turned,
        "relaxed": relaxed,
    }
    md = (
        f"`{command}`\n\n| photos | no face on the first search | found by the turned search | found by the relaxed"
        " search | found by the detector (turned, then relaxed) |\n|---|---|---|---|---|\n"
        f"| {len(records)} | {len(missed)} | {len(turned)} | {len(relaxed)} | {len(rescued)} |\n"
    )
    write_result(args.output, result, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
