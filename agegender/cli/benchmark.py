"""``agegender benchmark speed``: figures written to benchmarks/results, never asserted in tests."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("benchmark", help="speed benchmarks")
    bsub = p.add_subparsers(dest="bench_cmd", required=True)
    s = bsub.add_parser("speed", help="faces/s batched, single-face latency, photos/s with detection")
    s.add_argument("--model", help="model folder (default: the shipped model)")
    s.add_argument("--backends", default="torch,onnx")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--repeats", type=int, default=7)
    s.add_argument("--threads", type=int, help="threads (default: all cores)")
    s.add_argument("--photos", nargs="*", help="photos for the end-to-end figure (default: skimage astronaut)")
    s.add_argument("--output", default="benchmarks/results/speed.json", help="JSON output; .md written beside")
    s.set_defaults(func=cmd_speed)
    c = bsub.add_parser("candidate", help="evaluate a finished run (val + test, speed) into the candidates table")
    c.add_argument("run", help="run folder with model/, split.json and summary.json")
    c.add_argument("--data", required=True, help="the labelled data the run was trained on")
    c.add_argument("--name", help="row name (default: the run folder's name)")
    c.add_argument("--no-test", action="store_true", help="validation only (keep the test split untouched)")
    c.add_argument("--output", default="benchmarks/results/candidates.json")
    c.set_defaults(func=cmd_candidate)


def cmd_speed(args: argparse.Namespace) -> int:
    from agegender.inference.batch import write_result
    from agegender.inference.speed import benchmark_speed, format_speed

    result = benchmark_speed(
        args.model, tuple(args.backends.split(",")), args.batch_size, args.repeats, args.threads, args.photos
    )
    text = format_speed(result)
    print(text)
    out = Path(args.output)
    write_result(out, result, text)
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def cmd_candidate(args: argparse.Namespace) -> int:
    from agegender.inference.candidates import candidate_row, update_table

    row = candidate_row(args.run, args.data, args.name, test=not args.no_test)
    print(update_table(row, args.output))
    return 0
