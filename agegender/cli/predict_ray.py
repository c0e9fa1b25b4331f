"""``agegender predict --engine ray``: the same prediction, on a Ray cluster, into a folder of Parquet parts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agegender.errors import ConfigError


def _check(args: argparse.Namespace) -> None:
    """Options the Ray engine cannot honour are errors, not silently ignored (nothing has run yet)."""
    for flag, value in (("--competition", args.competition), ("--manifest", args.manifest)):
        if value:
            raise ConfigError(f"{flag} is not supported with --engine ray: give image files, folders or URIs")
    if args.format not in (None, "table"):
        raise ConfigError(f"--engine ray writes Parquet with the columns of --format csv: drop --format {args.format}")
    if not args.output:
        raise ConfigError("--engine ray needs --output FOLDER (Parquet part files; a local path or a URI)")
    if not args.inputs:
        raise ConfigError("no input images (give files, folders, glob patterns or URIs such as s3://bucket/photos/)")
    if args.detector_model and not Path(args.detector_model).is_file():
        raise ConfigError(f"--detector-model {args.detector_model}: no such file")


def cmd_predict_ray(args: argparse.Namespace) -> int:
    _check(args)
    from agegender.inference.batch import summary_line
    from agegender.integrations import ray as engine  # raises MissingExtraError without agegender[ray]

    started = engine.connect(args.address, quiet=args.quiet)
    try:
        report = engine.predict_to_parquet(
            args.inputs,
            args.output,
            recursive=args.recursive,
            workers=args.workers,
            batch_size=args.batch_size,
            model=args.model,
            backend=args.backend,
            detector=args.detector,
            detector_model=args.detector_model,
            detect=not args.no_detect,
            tta=args.tta,
            min_face=args.min_face,
            min_quality=args.min_quality,
        )
    finally:
        if started:
            engine.ray.shutdown()
    for path in report.missing:
        print(f"not found: {path}", file=sys.stderr)
    print(
        f"wrote {args.output}: {report.predicted} files predicted, {report.already_done} already there (skipped), "
        f"{len(report.missing)} not found"
    )
    print(f"in {args.output}: {summary_line(report.files, report.faces)}", file=sys.stderr)
    return 0 if set(report.files) <= {"ok"} else 1
