"""``agegender calibrate``: how honest is the 80% age interval on real photos, per quality flag; fit and store
the widening factors in the model folder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agegender.cli.argtypes import positive_int
from agegender.errors import EXIT_CODES_HELP, ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure the age interval's coverage on labelled photos per quality flag and fit widening factors",
        description=(
            "Runs labelled photos (and shrunk and blurred copies of them) end to end, measures how often the 80%% "
            "interval holds the true age for ok and for flagged faces, and fits one widening factor per flag, "
            "checked on the half of the photos it was not fitted on. --write stores them in MODEL/config.json, "
            "where prediction reads them."
        ),
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("model", help="model folder")
    p.add_argument("--data", help="labelled photos (folder with labels.csv, manifest, ...)")
    p.add_argument(
        "--factors-from",
        metavar="MODEL",
        help="instead of fitting, store MODEL's factors (e.g. for a refit on train + val: the same recipe"
        " without val, calibrated on val); measure their coverage with agegender evaluate --photos",
    )
    p.add_argument("--split-file", help="choose photos by this split file (e.g. the run's split.json)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument(
        "--limit",
        type=positive_int,
        help="use N photos (the first by content hash: a fixed random-like sample)",
    )
    p.add_argument("--output", help="write the figures as JSON here")
    p.add_argument("--write", action="store_true", help="store the factors in MODEL/config.json")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from agegender.data.readers import read_dataset
    from agegender.data.splits import split_records
    from agegender.evaluation.card import CARD_FILE, write_card
    from agegender.evaluation.fit_calibration import calibrate, collect_faces, format_calibration, write_calibration
    from agegender.inference.predictor import Predictor
    from agegender.models.folder import read_config
    from agegender.utils.io import ensure_writable, raise_if_unsaved, write_text_output

    read_config(args.model)  # a clear error now for a folder that is not a model
    if args.factors_from:
        return _copy_factors(args)
    if not args.data:
        raise ConfigError("give --data (labelled photos to fit on) or --factors-from MODEL")
    if args.output:
        ensure_writable(args.output)
    if args.write:
        ensure_writable(Path(args.model) / "config.json")
    records = [r for r in read_dataset(args.data, progress=not args.quiet).records if r.labelled]
    chosen = split_records(records, args.split_file)[args.split] if args.split_file else records
    if args.limit and args.limit < len(chosen):  # by content hash: the same sample on every machine
        chosen = sorted(chosen, key=lambda r: r.digest or str(r.path))[: args.limit]
    predictor = Predictor.load(args.model)
    rows = collect_faces(predictor, chosen, progress=not args.quiet)
    result = calibrate(rows)
    where = f"{args.data} ({args.split} split of {args.split_file})" if args.split_file else str(args.data)
    if args.limit:
        where += f", {len(chosen)} photos (first by content hash)"
    result["data"] = where
    print(format_calibration(result))
    saved = []
    if args.output:
        saved.append(write_text_output(args.output, json.dumps(result, indent=2) + "\n"))
    if args.write:
        print(f"wrote the factors to {write_calibration(args.model, result, where)}")
        if (Path(args.model) / CARD_FILE).is_file():  # the card describes the intervals: keep it in step
            print(f"updated {write_card(args.model)}")
    raise_if_unsaved(saved)
    return 0


def _copy_factors(args: argparse.Namespace) -> int:
    from agegender.evaluation.card import CARD_FILE, write_card
    from agegender.evaluation.fit_calibration import copy_calibration

    if args.data or args.output or not args.write:
        raise ConfigError("--factors-from copies factors: give it with --write, without --data or --output")
    print(f"wrote the factors of {args.factors_from} to {copy_calibration(args.model, args.factors_from)}")
    if (Path(args.model) / CARD_FILE).is_file():
        print(f"updated {write_card(args.model)}")
    return 0
