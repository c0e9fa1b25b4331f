"""``agegender evaluate --photos``: a model end to end on labelled photos (detection, alignment, network), the
figures a person reading the answers would see, optionally stored in the model folder for its card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agegender.errors import ConfigError


def cmd_evaluate_photos(args: argparse.Namespace) -> int:
    from agegender.data.readers import read_dataset
    from agegender.data.splits import split_records
    from agegender.evaluation.card import CARD_FILE, write_card
    from agegender.evaluation.evaluate import default_split_file
    from agegender.evaluation.photos import PHOTOS_FILE, evaluate_photos, format_photos, photo_summary
    from agegender.inference.predictor import Predictor
    from agegender.models.folder import DEFAULT_MODEL_DIR, read_config
    from agegender.utils.io import atomic_write_text, ensure_writable, raise_if_unsaved, write_text_output

    if len(args.data) != 1:
        raise ConfigError("--photos takes one --data (run it once per set of photos)")
    if args.report or args.tta:
        raise ConfigError("--report and --tta apply to face chips, not to --photos")
    folder = Path(args.model) if args.model else DEFAULT_MODEL_DIR
    if args.write:
        read_config(folder)  # a clear error for a .ckpt or a folder that is not a model
        ensure_writable(folder / PHOTOS_FILE)
    if args.output:
        ensure_writable(args.output)
    records = [r for r in read_dataset(args.data[0], progress=False).records if r.labelled]
    split_file = None
    if args.split != "all":
        split_file = args.split_file or default_split_file(args.model)
        if split_file is None or not Path(split_file).is_file():
            raise ConfigError(f"--split {args.split} needs a split file: none given or found beside the model")
        records = split_records(records, split_file)[args.split]
    if not records:
        raise ConfigError(f"no labelled photos in the {args.split} split of {args.data[0]}")
    predictor = Predictor.load(args.model)
    result = evaluate_photos(predictor, records, progress=not args.quiet)
    summary = photo_summary(result, args.data[0], args.split, split_file and str(split_file))
    where = summary["data"]
    print(format_photos(summary))
    saved = []
    if args.output:
        result.pop("rows")
        saved.append(write_text_output(args.output, json.dumps({**result, "data": where}, indent=2) + "\n"))
    if args.write:
        path = folder / PHOTOS_FILE
        stored = json.loads(path.read_text()) if path.is_file() else {}
        stored[where] = summary
        atomic_write_text(path, json.dumps(stored, indent=2) + "\n")
        print(f"wrote the figures to {path}")
        if (folder / CARD_FILE).is_file():
            print(f"updated {write_card(folder)}")
    raise_if_unsaved(saved)
    return 0
