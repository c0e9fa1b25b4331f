"""``agegender benchmark speed|candidate``: figures written under runs/benchmarks/ (or ``--output``), never
asserted in tests. The committed tables in benchmarks/results/ change only when ``--output`` names them."""

from __future__ import annotations

import argparse
from pathlib import Path

from agegender.cli.argtypes import positive_int
from agegender.errors import EXIT_CODES_HELP

#: Where benchmark figures go unless --output says otherwise: beside training runs, not over committed results.
DEFAULT_DIR = "runs/benchmarks"


def add_parser(sub) -> None:
    p = sub.add_parser("benchmark", help="speed benchmarks", epilog=EXIT_CODES_HELP)
    bsub = p.add_subparsers(dest="bench_cmd", required=True)
    s = bsub.add_parser(
        "speed", help="faces/s batched, single-face latency, photos/s with detection", epilog=EXIT_CODES_HELP
    )
    s.add_argument("--model", help="model folder (default: the shipped model)")
    s.add_argument("--backends", default="torch,onnx")
    s.add_argument("--batch-size", type=positive_int, default=64)
    s.add_argument("--repeats", type=positive_int, default=7)
    s.add_argument("--threads", type=positive_int, help="threads (default: all cores)")
    s.add_argument("--photos", nargs="*", help="photos for the end-to-end figure (default: the shipped astronaut.jpg)")
    s.add_argument(
        "--output", default=f"{DEFAULT_DIR}/speed.json", help="JSON output; .md written beside (default: %(default)s)"
    )
    s.set_defaults(func=cmd_speed)
    c = bsub.add_parser(
        "candidate",
        help="evaluate a finished run (val + test, speed) into the candidates table",
        epilog=EXIT_CODES_HELP,
    )
    c.add_argument("run", help="run folder with model/, split.json and summary.json")
    c.add_argument("--data", required=True, help="the labelled data the run was trained on")
    c.add_argument("--name", help="row name (default: the run folder's name)")
    c.add_argument("--no-test", action="store_true", help="validation only (keep the test split untouched)")
    c.add_argument(
        "--output",
        default=f"{DEFAULT_DIR}/candidates.json",
        help="table to add the row to; .md written beside (default: %(default)s)",
    )
    c.set_defaults(func=cmd_candidate)


def cmd_speed(args: argparse.Namespace) -> int:
    from agegender.benchmarks.speed import benchmark_speed, format_speed
    from agegender.inference.batch import write_result
    from agegender.utils.io import ensure_writable, raise_if_unsaved, save_output

    out = Path(args.output)
    ensure_writable(out)
    ensure_writable(out.with_suffix(".md"))
    result = benchmark_speed(
        args.model, tuple(args.backends.split(",")), args.batch_size, args.repeats, args.threads, args.photos
    )
    text = format_speed(result)
    print(text)
    saved = save_output(out, lambda p: write_result(p, result, text))
    raise_if_unsaved([saved])
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


def cmd_candidate(args: argparse.Namespace) -> int:
    from agegender.benchmarks.candidates import candidate_row, update_table
    from agegender.utils.io import ensure_writable, raise_if_unsaved, save_output

    ensure_writable(args.output)
    ensure_writable(Path(args.output).with_suffix(".md"))
    row = candidate_row(args.run, args.data, args.name, test=not args.no_test)
    tables: list[str] = []
    saved = save_output(args.output, lambda p: tables.append(update_table(row, p)))
    print(tables[-1] if tables else row)
    raise_if_unsaved([saved])
    return 0
