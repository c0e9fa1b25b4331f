"""``agegender predict`` and ``agegender export``."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from agegender.cli.argtypes import DETECTOR_HELP, positive_int
from agegender.errors import EXIT_CODES_HELP, PREDICT_EXIT_CODES_HELP
from agegender.face_filter import FILTER_HELP, QualityFilter


def _filter_option(name: str) -> Callable[[str], float]:
    """argparse type for a QualityFilter option: its own validation, reported as a usage error."""

    def parse(text: str) -> float:
        try:
            return QualityFilter.check(name, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="predict age and gender on photos, folders, manifests or a competition set",
        description="Every face in every image gets an estimate (flagged low_quality with its reasons when it is"
        " small, blurry, uncertain or turned); bad files get a status, never a crash.",
        epilog=PREDICT_EXIT_CODES_HELP,
    )
    p.add_argument("inputs", nargs="*", help="image files, folders or glob patterns")
    p.add_argument("--model", help="model folder (default: the shipped model)")
    p.add_argument(
        "--manifest", help="CSV with a 'path' column (and optional 'id'); relative paths are read from its folder"
    )
    p.add_argument("--competition", metavar="DIR", help="read DIR/test.csv, write submission.csv (id,age,gender)")
    p.add_argument("--recursive", "-r", action="store_true", help="descend into sub-folders")
    p.add_argument("--no-detect", action="store_true", help="images are already face crops (UTKFace-like)")
    p.add_argument("--detector", default="auto", help=DETECTOR_HELP)
    p.add_argument("--detector-model", help="model file for the yunet detector")
    p.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default=None,
        help="output format (default: from the --output extension, .json or .csv; else the text table)",
    )
    p.add_argument(
        "--output",
        "-o",
        help="output file (.json, .csv, else the table), or the submission path with --competition; '-': standard"
        " output",
    )
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per batch")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto")
    p.add_argument("--tta", action="store_true", help="average with the mirrored face")
    p.add_argument("--draw", metavar="DIR", help="also write each photo with its faces drawn (boxes, labels) to DIR")
    for name, metavar in (("min_face", "PX"), ("min_quality", "Q")):
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, type=_filter_option(name), default=0.0, metavar=metavar, help=FILTER_HELP[name])
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process; ray: a Ray cluster, INPUTS may be URIs (s3://...), --output is a folder of"
        " Parquet parts and a re-run skips the files done (needs agegender[ray]; see docs/scale.md)",
    )
    p.add_argument("--address", help="with --engine ray: the cluster (auto, ray://HOST:10001; default: start one here)")
    p.add_argument(
        "--workers",
        type=positive_int,
        help="local: photos whose faces are sought at once (default 2; 1: one after another); ray: actors"
        " (default: one per CPU core)",
    )
    p.set_defaults(func=cmd_predict)

    e = sub.add_parser("export", help="export a model folder to ONNX (and TorchScript)", epilog=EXIT_CODES_HELP)
    e.add_argument("model", nargs="?", help="model folder (default: the shipped model)")
    e.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    e.add_argument(
        "--output",
        help="output file (default: inside the model folder named; for the shipped model runs/export/, so the "
        "installed model.onnx is only replaced when --output names it)",
    )
    e.add_argument("--check", action="store_true", help="compare the export with PyTorch on random inputs")
    e.set_defaults(func=cmd_export)

    k = sub.add_parser(
        "package", help="make a finished run into a model folder with ONNX and a model card", epilog=EXIT_CODES_HELP
    )
    k.add_argument("run", help="run folder (with model/, split.json)")
    k.add_argument(
        "--data",
        required=True,
        action="append",
        help="the labelled data it was trained on, for the test metrics (repeat for several datasets: figures per"
        " dataset)",
    )
    k.add_argument("--output", required=True, help="model folder to write (e.g. agegender/models/default)")
    k.add_argument("--report", help="also write the evaluation report (plots) here")
    k.add_argument(
        "--age-temperature",
        type=float,
        metavar="T",
        help="read the age from softmax(logits / T) (distribution head; T < 1: closer to the peak, less pull toward"
        " common ages); choose T on validation with benchmarks/age_decoding.py",
    )
    k.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    k.set_defaults(func=cmd_package)

    w = sub.add_parser(
        "soup",
        help="average the weights of models fine-tuned from one start (WiSE-FT) into a run folder",
        epilog=EXIT_CODES_HELP,
    )
    w.add_argument("models", nargs="+", help="model folders or .ckpt files (same architecture, same start)")
    w.add_argument("--weights", type=float, nargs="+", help="one weight per model (default: equal)")
    w.add_argument("--split-file", required=True, help="the split the result is evaluated and packaged with")
    w.add_argument("--output", required=True, help="run folder to write (model/, split.json)")
    w.set_defaults(func=cmd_soup)


#: Output formats implied by a file extension; anything else is the text table.
FORMAT_BY_SUFFIX = {".json": "json", ".csv": "csv"}


def output_format(given: str | None, output: str | None) -> str:
    """The format asked for, else the one the output file's extension names; a contradiction is an error."""
    from agegender.errors import ConfigError

    implied = FORMAT_BY_SUFFIX.get(Path(output).suffix.lower()) if output else None
    if given and implied and given != implied:
        raise ConfigError(f"--format {given} contradicts --output {output} (a .{implied} file); drop one of them")
    return given or implied or "table"


#: ``-o -``: the output goes to standard output, as for most command-line tools.
STDOUT = "-"
#: Rows of a competition set named one by one when they get the filler age; the rest are counted.
NOTES_SHOWN = 20


def check_predict_options(args: argparse.Namespace) -> None:
    """Refuse options that contradict each other or do nothing here, before any work: silently ignoring one
    would give the user something other than what they asked for."""
    from agegender.errors import ConfigError

    if args.address:
        raise ConfigError("--address applies to --engine ray")
    if args.competition and (args.inputs or args.manifest):
        raise ConfigError("--competition reads its images from DIR/test.csv: give no other inputs or --manifest")
    if args.manifest and args.inputs:
        raise ConfigError("give image files and folders, or --manifest, not both")
    if args.competition and args.format not in (None, "csv"):
        raise ConfigError("--competition writes submission.csv (id,age,gender): --format must be csv or left out")
    if args.competition and args.output not in (None, STDOUT) and Path(args.output).suffix.lower() != ".csv":
        raise ConfigError(f"--competition writes a CSV file: --output {args.output} should end in .csv")
    if args.detector_model:
        from agegender.faces.detectors.base import detector_takes

        if not detector_takes(args.detector, "model_path"):
            raise ConfigError(f"--detector-model is for detectors with a model file (yunet), not {args.detector!r}")
    if args.no_detect and args.min_face:
        raise ConfigError("--min-face measures detected faces: with --no-detect there are none to measure")


def cmd_predict(args: argparse.Namespace) -> int:
    if args.engine == "ray":
        from agegender.cli.predict_ray import cmd_predict_ray

        return cmd_predict_ray(args)
    check_predict_options(args)
    from agegender.data.listing import list_images, skipped_files_note
    from agegender.inference import batch
    from agegender.inference.predictor import Predictor
    from agegender.utils.io import ensure_writable, raise_if_unsaved, write_text_output

    to_stdout = args.output == STDOUT
    if to_stdout:
        args.output = None
    args.format = output_format(args.format, args.output if not args.competition else None)
    out = args.output
    if args.competition:
        out = None if to_stdout else Path(args.output or Path(args.competition) / "submission.csv")
    if out:
        ensure_writable(out)
    if args.draw:
        ensure_writable(args.draw, kind="dir")
    if args.competition:
        items = batch.competition_items(args.competition)
    elif args.manifest:
        items = batch.manifest_items(args.manifest)
    else:
        items = batch.collect_inputs(args.inputs, args.recursive)
    for note in filter(None, (skipped_files_note(Path(s), args.recursive) for s in args.inputs if Path(s).is_dir())):
        print(note, file=sys.stderr)
    read_from = {parent for item in items for parent in item.path.parents}  # the folders listed above, not again
    empty = [s for s in args.inputs if Path(s).is_dir() and Path(s) not in read_from]
    if items and empty:  # the others are read; say which folders gave nothing (with no items at all: the error)
        deeper = "" if args.recursive else " (--recursive / -r reads sub-folders)"
        print(f"note: no images in {', '.join(empty)}{deeper}", file=sys.stderr)
    if not items:
        folders = [s for s in args.inputs if Path(s).is_dir()] if not (args.manifest or args.competition) else []
        where = f" in {', '.join(folders)}" if folders else ""
        deeper = not args.recursive and any(list_images(Path(f), recursive=True) for f in folders)
        hint = (
            ", only in sub-folders: add --recursive (-r) to read them"
            if deeper
            else " (give files, folders, --manifest or --competition)"
        )
        print(f"error: no input images{where}{hint}", file=sys.stderr)
        return 2
    detector = args.detector
    if args.detector_model and not Path(args.detector_model).is_file():
        print(f"error: --detector-model {args.detector_model}: no such file", file=sys.stderr)
        return 2
    if args.detector_model:
        from agegender.faces import create_detector

        detector = create_detector(args.detector, model_path=args.detector_model)
    predictor = Predictor.load(
        args.model,
        backend=args.backend,
        detector=detector,
        tta=args.tta,
        min_face=args.min_face,
        min_quality=args.min_quality,
        workers=args.workers or 2,
    )
    results: list = []
    stopped_by = None
    try:
        with terminate_as_interrupt():
            for result in batch.run_predictions(
                predictor,
                items,
                detect=not args.no_detect,
                single=bool(args.competition),
                chunk=args.batch_size,
                progress=not args.quiet,
            ):
                results.append(result)
    except KeyboardInterrupt as e:  # the inputs finished so far are written (a submission needs every row)
        if args.competition:
            raise
        stopped_by = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
        print(f"{stopped_by} after {len(results)} of {len(items)} inputs: writing those", file=sys.stderr)
    saved = []
    if args.competition:
        failed = [r for r in results if r.status == "error"]
        for r in failed[:NOTES_SHOWN]:
            print(f"note: id {r.id}: {r.message}; its row holds the filler age {batch.FALLBACK_AGE:g}", file=sys.stderr)
        if len(failed) > NOTES_SHOWN:
            print(
                f"note: and {len(failed) - NOTES_SHOWN} more rows hold the filler age",
                file=sys.stderr,
            )
        if to_stdout:
            sys.stdout.write(batch.to_submission(results))
        else:
            saved.append(write_text_output(out, batch.to_submission(results)))
            if not saved[-1].error:
                print(f"wrote {out} ({len(results)} rows)")
    elif args.format == "table":
        text = batch.to_table(results)
        if args.output:
            saved.append(write_text_output(args.output, text + "\n"))
            if not saved[-1].error:
                print(f"wrote {args.output}")
        else:
            print(text)
    else:
        text = batch.to_json(results) if args.format == "json" else batch.to_csv(results)
        if args.output:
            saved.append(write_text_output(args.output, text))
            if not saved[-1].error:
                print(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
    if args.draw:
        drawn = draw_results(results, Path(args.draw), progress=not args.quiet)
        print(f"wrote {drawn} annotated images to {args.draw}", file=sys.stderr)
    print(batch.summarize(results), file=sys.stderr)
    raise_if_unsaved(saved)
    if stopped_by:
        from agegender.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Stopped

        code = EXIT_TERMINATED if stopped_by == "SIGTERM" else EXIT_INTERRUPTED
        raise Stopped(f"stopped by {stopped_by}: {len(results)} of {len(items)} inputs done and written", code)
    return 0 if all(r.status == "ok" for r in results) else 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler, ``kill``), raised where Ctrl-C would be so both keep the finished results."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def draw_results(results: list, folder: Path, progress: bool = True) -> int:
    """Each readable input with its faces drawn, as ``folder/<name>.jpg`` (names made unique); returns the count."""
    from tqdm.auto import tqdm

    from agegender.data.images import ImageError, load_image
    from agegender.serving.drawing import annotate

    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    count = 0
    for r in tqdm(results, desc="drawing", unit="img", disable=not progress):
        if r.status == "error":
            continue
        try:
            image = load_image(r.path)
        except ImageError:
            continue
        stem, n = Path(r.path).stem, 1
        name = f"{stem}.jpg"
        while name in used:
            n += 1
            name = f"{stem}_{n}.jpg"
        used.add(name)
        annotate(image, r.faces, max_side=2048).save(folder / name, quality=90)
        count += 1
    return count


def cmd_export(args: argparse.Namespace) -> int:
    from agegender.inference.engine import load_net
    from agegender.models.folder import DEFAULT_MODEL_DIR
    from agegender.utils.io import ensure_writable

    folder = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    net, _ = load_net(folder)
    # The shipped folder is written only when asked by name: a default export lands under runs/.
    out_dir = Path("runs/export") if folder.resolve() == DEFAULT_MODEL_DIR.resolve() else folder
    if args.format == "onnx":
        from agegender.models.export import ONNX_FILE, export_onnx

        out = export_onnx(net, args.output or ensure_writable(out_dir / ONNX_FILE))
        if Path(out).resolve() == (folder / ONNX_FILE).resolve():
            from agegender.models.folder import record_fingerprints

            record_fingerprints(folder)  # model.onnx now matches model.safetensors again
    else:
        import torch

        from agegender.models.model import InferenceNet

        out = Path(args.output or ensure_writable(out_dir / "model.torchscript.pt"))
        out.parent.mkdir(parents=True, exist_ok=True)
        x = torch.zeros(1, 3, net.input_size, net.input_size)
        torch.jit.trace(InferenceNet(net).eval(), x).save(str(out))
    print(f"wrote {out}")
    if args.check:
        from agegender.inference.compare import compare_backends

        result = compare_backends(net, out, args.format)
        print(result)
        if not result["ok"]:
            print(f"error: {out} does not match PyTorch within {result['tolerance']}", file=sys.stderr)
            return 1
    return 0


def cmd_soup(args: argparse.Namespace) -> int:
    from agegender.training.soup import make_soup

    if args.weights is not None and len(args.weights) != len(args.models):
        print(f"error: {len(args.models)} models but {len(args.weights)} --weights", file=sys.stderr)
        return 2
    out = make_soup(args.models, args.output, args.split_file, args.weights)
    print(f"wrote {out / 'model'} (package it with: agegender package {out} --data ... --output ...)")
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    from agegender.evaluation.metrics import format_metrics
    from agegender.training.package import package_run

    data = args.data[0] if len(args.data) == 1 else args.data
    result = package_run(
        args.run, data, args.output, args.report, age_temperature=args.age_temperature, progress=not args.quiet
    )
    print(f"wrote {args.output}: test {format_metrics(result['overall'])}")
    return 0
