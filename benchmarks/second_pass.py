"""How many photos MTCNN's second search (padded, relaxed thresholds) rescues: photos with no face on the first
search, and how many of those get a face with the second. Writes benchmarks/results/second_pass.{json,md}.

    python benchmarks/second_pass.py ../shared/data/appa_real_train
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm.auto import tqdm

from agegender.data.images import ImageError, load_image
from agegender.data.readers import read_dataset
from agegender.faces.detectors import MTCNNDetector
from agegender.inference.batch import write_result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="photos (any supported layout)")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/second_pass.json"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    first, both = MTCNNDetector(second_pass=False), MTCNNDetector()
    records = read_dataset(args.data, progress=False).records
    missed, rescued = [], []
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
    command = " ".join(["python", "benchmarks/second_pass.py", *argv])
    result = {
        "command": command,
        "photos": len(records),
        "missed_by_first_search": len(missed),
        "found_by_second_search": len(rescued),
        "rescued": rescued,
    }
    md = (
        f"`{command}`\n\n| photos | no face on the first search | face found by the second search |\n"
        f"|---|---|---|\n| {len(records)} | {len(missed)} | {len(rescued)} |\n"
    )
    write_result(args.output, result, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
