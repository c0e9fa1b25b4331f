"""The ``agegender`` command line: one entry point with subcommands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from typing import Any

from agegender.cli.argtypes import positive_int
from agegender.cli.logs import setup_logging
from agegender.errors import (
    EXIT_CODES_HELP,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    AgeGenderError,
    ConfigError,
    missing_extra,
)

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="inspect datasets")
    dsub = p.add_subparsers(dest="data_cmd", required=True)
    i = dsub.add_parser(
        "inspect", help="counts, age histogram, problems, duplicates and split sizes", epilog=EXIT_CODES_HELP
    )
    i.add_argument("path", help="UTKFace folder, competition folder, CSV manifest or image folder")
    i.add_argument("--format", default="auto", choices=["auto", "utkface", "competition", "manifest", "images"])
    i.add_argument("--split-file", help="reuse (or write) this split file")
    i.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    i.set_defaults(func=cmd_inspect)
    a = dsub.add_parser(
        "align",
        help="detect and align the main face of each labelled photo into training chips plus a manifest",
        description=(
            "Runs every labelled photo through the same detector and aligner as prediction, keeps the main "
            "face (largest and most central), and writes OUTPUT/images/*.png, OUTPUT/labels.csv (labels, source "
            "photo and its hash) and OUTPUT/align_report.json. Re-running skips photos already done."
        ),
    )
    a.add_argument("source", help="labelled photos: UTKFace folder, competition folder or CSV manifest")
    a.add_argument("--output", required=True, help="folder for the chips, labels.csv and the report")
    a.add_argument("--format", default="auto", choices=["auto", "utkface", "competition", "manifest"])
    a.add_argument("--detector", default="auto", help="face detector (as for predict)")
    a.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    a.add_argument("--redo-failed", action="store_true", help="try the photos that got no chip again")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_align)
    a = dsub.add_parser("augment-preview", help="PNG grid of faces and their training augmentations (a recipe's)")
    a.add_argument("recipe", nargs="?", default=None, help="built-in recipe name or YAML path")
    a.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. data.augment.degrade_p=1.0")
    a.add_argument("--data", help="images to sample (sets data.path)")
    a.add_argument("--output", required=True, help="PNG file to write")
    a.add_argument("--n", type=int, default=8, help="faces (rows)")
    a.add_argument("--per-image", type=int, default=6, help="augmented versions per face (columns after the original)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--colors", type=int, default=0, help="palette colours (e.g. 256) for a small PNG; 0: full colour")
    a.set_defaults(func=cmd_augment_preview)


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a recipe",
        description=(
            "Train from a recipe (built-in name or YAML file). Any recipe value can be overridden: "
            "agegender train mobilenet_v2_dldl --data DIR train.epochs=5 model.input_size=112"
        ),
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("recipe", nargs="?", default=None, help="built-in recipe name or YAML path")
    p.add_argument("overrides", nargs="*", help="key.sub=value overrides")
    p.add_argument(
        "--data",
        action="append",
        help="training data (sets data.path); give it several times to train on several datasets (data.sources)",
    )
    p.add_argument("--init", help="fine-tune: start from this model folder or checkpoint (sets model.init)")
    p.add_argument("--output", help="run folder (sets train.output_dir)")
    p.add_argument("--epochs", type=positive_int, help="sets train.epochs")
    p.add_argument("--devices", type=positive_int, help="sets train.devices")
    p.add_argument("--strategy", help="sets train.strategy (e.g. ddp)")
    p.add_argument("--resume", action="store_true", help="continue from <output>/checkpoints/last.ckpt")
    p.add_argument("--list", action="store_true", help="list built-in recipes and backbones")
    p.set_defaults(func=cmd_train)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model on labelled data", epilog=EXIT_CODES_HELP)
    p.add_argument("model", nargs="?", default=None, help="model folder or .ckpt (default: the shipped model)")
    p.add_argument(
        "--data",
        required=True,
        action="append",
        help="labelled data (any supported layout); give it several times for figures per dataset and overall",
    )
    p.add_argument("--format", default="auto")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    p.add_argument("--split-file", help="split file (default: the one the model was trained with)")
    p.add_argument("--output", help="write metrics JSON here")
    p.add_argument("--report", help="write a report folder (JSON, markdown, plots)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--tta", action="store_true", help="average with the horizontally flipped image")
    p.add_argument(
        "--photos",
        action="store_true",
        help="DATA are photos: detect, align and estimate each end to end (as predict); photos without an"
        " estimate count against the share estimated",
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="with --photos: store the figures in MODEL/metrics_photos.json and update its MODEL_CARD.md",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)


def cmd_inspect(args: argparse.Namespace) -> int:
    from agegender.data.inspect import format_inspection, inspect_dataset
    from agegender.utils.io import ensure_writable, raise_if_unsaved, write_text_output

    if args.json:
        ensure_writable(args.json)
    info, reading = inspect_dataset(args.path, args.format, args.split_file)
    print(format_inspection(info, reading))
    if args.json:
        raise_if_unsaved([write_text_output(args.json, json.dumps(info, indent=2, default=str) + "\n")])
    return 0


def cmd_align(args: argparse.Namespace) -> int:
    from agegender.faces.chips import align_dataset, format_report

    report = align_dataset(
        args.source,
        args.output,
        args.format,
        args.detector,
        workers=args.workers,
        progress=not args.quiet,
        redo_failed=args.redo_failed,
    )
    print(format_report(report))
    return 0


def cmd_augment_preview(args: argparse.Namespace) -> int:
    result = _preview_from_args(args)
    print(f"wrote {result.path} ({result.width} x {result.height} px, {result.rows} faces)")
    return 0


def _preview_from_args(args: argparse.Namespace) -> Any:
    """``agegender data augment-preview``: load the recipe (with overrides, ``--data`` sets data.path), write."""
    from agegender.data.preview import DEFAULT_SIZE, augment_preview
    from agegender.errors import ConfigError
    from agegender.training.config import load_recipe

    overrides = list(args.overrides)
    recipe_name = args.recipe
    if recipe_name is not None and "=" in recipe_name:  # only overrides were given: argparse took one as the recipe
        overrides.insert(0, recipe_name)
        recipe_name = None
    if args.data is not None:
        overrides += [f"data.path={args.data}", "data.sources=[]"]
    recipe = load_recipe(recipe_name, overrides)
    sources = recipe.data.source_list()
    if not sources:
        raise ConfigError("no data: pass --data PATH (or set data.path in the recipe)")
    return augment_preview(
        sources[0].path,  # a multi-dataset recipe: its first dataset
        args.output,
        recipe.data.augment,
        recipe.model.input_size or DEFAULT_SIZE,
        fmt=sources[0].format,
        n=args.n,
        per_image=args.per_image,
        seed=args.seed,
        colors=args.colors,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from agegender.models.registry import list_backbones
    from agegender.training.config import list_recipes, load_recipe

    if args.list:
        print("recipes:   " + ", ".join(list_recipes()))
        print("backbones: " + ", ".join(list_backbones()))
        return 0
    overrides = list(args.overrides)
    if args.data and len(args.data) == 1:
        overrides += [f"data.path={args.data[0]}", "data.sources=[]"]
    elif args.data:
        overrides += ["data.path=null", "data.sources=" + json.dumps(args.data)]
    for flag, key in (
        ("init", "model.init"),
        ("output", "train.output_dir"),
        ("epochs", "train.epochs"),
        ("devices", "train.devices"),
        ("strategy", "train.strategy"),
    ):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    recipe = load_recipe(args.recipe, overrides)
    from agegender.training.train import fit

    summary = fit(recipe, resume=args.resume)
    if summary.get("model_folder"):
        print(json.dumps(summary, indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.photos:
        from agegender.cli.evaluate_photos import cmd_evaluate_photos

        return cmd_evaluate_photos(args)
    if args.write:
        raise ConfigError("--write applies to --photos (chip figures are written by agegender package)")
    from agegender.evaluation.evaluate import run_evaluation
    from agegender.utils.io import ensure_writable, raise_if_unsaved, save_output, write_text_output

    if args.output:
        ensure_writable(args.output)
    if args.report:
        ensure_writable(args.report, kind="dir")
    ev = run_evaluation(
        args.model,
        args.data if len(args.data) > 1 else args.data[0],
        fmt=args.format,
        split=args.split,
        split_file=args.split_file,
        batch_size=args.batch_size,
        tta=args.tta,
        progress=not args.quiet,
    )
    for reading in ev.readings:
        if reading.excluded:
            report = reading.report
            print(f"note: {reading.excluded} of {report.rows} rows were excluded:", file=sys.stderr)
            print(report.summary(), file=sys.stderr)
    result = ev.result
    from agegender.evaluation.metrics import format_metrics

    print(format_metrics(result["overall"]))
    for kind, slices in result["slices"].items():
        print(f"by {kind}:")
        for name, m in slices.items():
            print(f"  {name:>8}: {format_metrics(m)}")
    saved = []
    if args.report:
        from agegender.evaluation.report import write_report

        saved.append(save_output(args.report, lambda d: write_report(result, ev.predictions, d)))
    if args.output:
        saved.append(write_text_output(args.output, json.dumps(result, indent=2) + "\n"))
    raise_if_unsaved(saved)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agegender",
        description="Estimate age and gender from face images: train, evaluate, predict, serve.",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("--version", action="version", version=f"agegender {_version()}")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("--verbose", "-v", dest="log_verbose", action="store_true", help="log debug messages too")
    noise.add_argument(
        "--quiet", "-q", dest="log_quiet", action="store_true", help="only warnings and errors (and no progress bars)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_data(sub)
    _add_train(sub)
    _add_evaluate(sub)
    for extra in _EXTRA_COMMANDS:
        extra(sub)
    return parser


def _version() -> str:
    from agegender import __version__

    return __version__


#: Sub-packages add their subcommands here (predict, export, serve, benchmark) without editing this file twice.
_EXTRA_COMMANDS: list = []


def _load_extra_commands() -> None:
    import importlib

    for mod in ("agegender.cli.predict", "agegender.cli.calibrate", "agegender.cli.serve", "agegender.cli.benchmark"):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue
            raise
        if m.add_parser not in _EXTRA_COMMANDS:  # main() may run more than once in a process
            _EXTRA_COMMANDS.append(m.add_parser)


TCMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
)


def _maybe_reexec_with_tcmalloc(argv: list[str]) -> None:
    """Training with tcmalloc preloaded ran ~1.5x faster here (benchmarks/results/train_speed.md): when the
    library is installed and not yet loaded, restart ``agegender train`` with it. AGEGENDER_TCMALLOC=0 opts out."""
    if os.environ.get("AGEGENDER_TCMALLOC", "1") == "0" or "tcmalloc" in os.environ.get("LD_PRELOAD", ""):
        return
    lib = next((p for p in TCMALLOC_PATHS if os.path.isfile(p)), None)
    if lib is None or sys.platform != "linux":
        return
    env = dict(os.environ, LD_PRELOAD=":".join(filter(None, [lib, os.environ.get("LD_PRELOAD")])))
    os.execve(sys.executable, [sys.executable, "-m", "agegender.cli.main", *argv], env)


class PipeSafeStdout:
    """stdout that outlives its reader (``agegender evaluate ... | head -1``): once the pipe is closed, the rest
    of the printed text goes to /dev/null and the command carries on, so the files it writes are not lost and
    no BrokenPipeError traceback is printed."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _divert(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())  # the buffered text then flushes into /dev/null
        finally:
            os.close(devnull)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._divert()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._divert()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # run as a program (not called from Python): training may restart itself with tcmalloc
        argv = sys.argv[1:]
        if argv[:1] == ["train"]:
            _maybe_reexec_with_tcmalloc(argv)
        if not isinstance(sys.stdout, PipeSafeStdout) and sys.stdout is not None:
            sys.stdout = PipeSafeStdout(sys.stdout)
    _load_extra_commands()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may come anywhere on a command line that takes them (train, data augment-preview).
    if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    setup_logging(verbose=args.log_verbose, quiet=args.log_quiet)
    if args.log_quiet and hasattr(args, "quiet"):
        args.quiet = True  # a subcommand's own --quiet turns off its progress bar
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ModuleNotFoundError as e:  # an optional extra is not installed: say which one
        error = missing_extra(e, f"agegender {args.command}")
        if error is None or os.environ.get("AGEGENDER_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except AgeGenderError as e:  # the user's input, options or environment: the message says what to do
        if os.environ.get("AGEGENDER_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception:  # anything else is a bug: keep the traceback, and an exit code no user error has
        if os.environ.get("AGEGENDER_DEBUG"):
            raise
        traceback.print_exc()
        print(
            "agegender: internal error (a bug, not a problem with your input); please report it with the traceback",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
