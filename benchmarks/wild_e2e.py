"""Models side by side on labelled in-the-wild photos, end to end (detection, alignment, network, answer).

For each model: photos with an estimate, MAE, RMSE, gender accuracy, mean signed error per age band (>0: too
old), and the share of true ages inside the 80% interval, for all faces and for faces flagged as low quality.
Photos are chosen by a split file (by the content hash of each photo), e.g. the wild validation split of a run
trained with `agegender data align` chips, so no model is scored on photos it trained on:

    python benchmarks/wild_e2e.py agegender/models/default runs/wild_ft/model \
        --data ../shared/data/appa_real_train --split-file runs/wild_ft/split.json --split val \
        --output benchmarks/results/wild_val.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agegender import Predictor
from agegender.data.readers import read_dataset
from agegender.data.records import FaceRecord
from agegender.data.splits import split_records
from agegender.evaluation.photos import SUMMARY_BANDS, evaluate_photos
from agegender.inference.batch import write_result

BANDS = SUMMARY_BANDS


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def markdown(results: list[dict], command: str) -> str:
    lines = [
        f"End to end on {results[0]['photos']} labelled photos (`{command}`)",
        "",
        "| model | photos with an estimate | flagged | MAE | RMSE | gender acc | score | 80% interval coverage: "
        "all / ok / flagged |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o, c = r["overall"], r["interval_coverage"]
        lines.append(
            f"| {r['model']} | {r['estimated']} / {r['photos']} ({100 * r['estimated_share']:.1f}%) | "
            f"{r['flagged']} | {o['mae']:.2f} | {o['rmse']:.2f} | {100 * o['gender_acc']:.1f}% | {o['score']:.3f} | "
            f"{_fmt(c['all']['coverage'], '.0%')} / {_fmt(c['ok']['coverage'], '.0%')} / "
            f"{_fmt(c['flagged']['coverage'], '.0%')} (n={c['flagged']['n']}) |"
        )
    lines += ["", "Mean signed error (years; > 0: too old) and MAE per age band:", ""]
    lines.append("| model | " + " | ".join(f"{b} (n)" for b in BANDS) + " |")
    lines.append("|---|" + "---|" * len(BANDS))
    for r in results:
        bands = r["slices"].get("age_band", {})
        cells = [
            f"{bands[b]['mean_error']:+.1f} / {bands[b]['mae']:.1f} ({bands[b]['n']})" if b in bands else "-"
            for b in BANDS
        ]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    lines += ["", "Per quality flag: faces, MAE, 80% interval coverage (a face may have several flags):", ""]
    for r in results:
        c = r["interval_coverage"]
        cells = [
            f"{k} {v['n']}, {_fmt(v.get('mae'), '.2f')}, {_fmt(v['coverage'], '.0%')}" for k, v in c.items() if v["n"]
        ]
        lines.append(f"- {r['model']}: " + "; ".join(cells))
    return "\n".join(lines) + "\n"


def labelled_records(data: str | Path, split_file: str | Path | None = None, split: str = "val") -> list[FaceRecord]:
    """The labelled photos of ``data``, only those of ``split`` when a split file is given."""
    records = [r for r in read_dataset(data, progress=False).records if r.labelled]
    return split_records(records, split_file)[split] if split_file else records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="model folders ('default' for the shipped model)")
    ap.add_argument("--data", required=True, help="labelled photos (folder with labels.csv, manifest, ...)")
    ap.add_argument("--split-file", help="split file choosing the photos (default: all photos)")
    ap.add_argument("--split", default="val", choices=["train", "val", "test"])
    ap.add_argument("--detector", default="auto", help="NAME[:key=value,...], as agegender predict --detector")
    ap.add_argument("--tta", action="store_true", help="average each face with its mirror, as agegender predict --tta")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/wild_val.json"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    records = labelled_records(args.data, args.split_file, args.split)
    results = []
    for model in args.models:
        predictor = Predictor.load(None if model == "default" else model, detector=args.detector, tta=args.tta)
        res = evaluate_photos(predictor, records)
        res["model"] = model
        results.append(res)
        mae = res["overall"].get("mae", float("nan"))
        print(f"{model}: {res['estimated']}/{res['photos']} estimated, MAE {mae:.2f}")
    command = " ".join(["python", "benchmarks/wild_e2e.py", *argv])
    text = markdown(results, command)
    summary = {
        "command": command,
        "data": args.data,
        "split_file": args.split_file,
        "split": args.split,
        "tta": args.tta,
        "results": [{k: v for k, v in r.items() if k != "rows"} for r in results],
    }
    write_result(args.output, summary, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
