"""What the benchmark scripts share: writing and showing their results."""

from __future__ import annotations

import argparse
from pathlib import Path

from agegender.inference.batch import write_result


def detector_comparison_parser(doc: str, output: str) -> argparse.ArgumentParser:
    """Arguments of a benchmark that runs detectors over the labelled photos of a split against a reference
    detector; the script adds its own."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", required=True, help="labelled photos (folder with labels.csv, manifest, ...)")
    ap.add_argument("--split-file", help="split file choosing the photos (default: all photos)")
    ap.add_argument("--split", default="train", choices=["train", "val", "test"])
    ap.add_argument("--reference", default="mtcnn", help="detector the others are matched against")
    ap.add_argument("--detector", action="append", required=True, help="NAME[:key=value,...]; repeatable")
    ap.add_argument("--output", type=Path, default=Path(output))
    return ap


def publish_result(path: str | Path, result: dict, markdown: str) -> int:
    """``write_result`` (the JSON and its markdown table), then the table on stdout for whoever ran the benchmark;
    0, the script's exit status."""
    write_result(path, result, markdown)
    print(markdown)
    return 0
