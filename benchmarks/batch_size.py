"""Faces per second of the age/gender network on ONNX Runtime against the batch it is run with.

The same faces (random input of the model's size) go through :class:`agegender.inference.engine.OnnxEngine` in
batches of each size; sizes are interleaved within every repeat so that drifts in CPU speed hit them all alike;
faces/s is the median over repeats:

    python benchmarks/batch_size.py                           # the shipped model, 2 threads
    python benchmarks/batch_size.py --model runs/x/model --sizes 1 8 64

Writes benchmarks/results/batch_size.{json,md}. Figures, not tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from agegender.inference.batch import write_result
from agegender.inference.engine import OnnxEngine
from agegender.models.folder import DEFAULT_MODEL_DIR


def sweep(engine: OnnxEngine, sizes: list[int], faces: int, repeats: int) -> dict[int, list[float]]:
    """faces/s per batch size, one value per repeat."""
    side = engine.pre.size
    x = np.random.default_rng(0).normal(size=(faces, 3, side, side)).astype(np.float32)
    runs: dict[int, list[float]] = {b: [] for b in sizes}
    for _ in range(repeats):
        for b in sizes:
            engine.run(x[:b])  # warm: ONNX Runtime plans memory per input shape
            t = time.perf_counter()
            for i in range(0, faces, b):
                engine.run(x[i : i + b])
            runs[b].append(faces / (time.perf_counter() - t))
    return runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    ap.add_argument("--faces", type=int, default=512, help="faces per timed pass (a multiple of every size)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/batch_size.json"))
    args = ap.parse_args(argv)
    engine = OnnxEngine.from_folder(args.model, threads=args.threads)
    runs = sweep(engine, args.sizes, args.faces, args.repeats)
    medians = {b: round(statistics.median(v), 1) for b, v in runs.items()}
    command = "python benchmarks/batch_size.py" + (f" --model {args.model}" if args.model != DEFAULT_MODEL_DIR else "")
    result = {
        "command": command,
        "model": str(args.model),
        "threads": args.threads,
        "faces": args.faces,
        "repeats": args.repeats,
        "faces_per_s": medians,
        "faces_per_s_runs": {b: [round(r, 1) for r in v] for b, v in runs.items()},
    }
    best = max(medians, key=medians.get)
    lines = [
        f"Age/gender network on ONNX Runtime, {args.threads} threads, {args.faces} faces per pass, medians of "
        f"{args.repeats} interleaved repeats (`{command}`)",
        "",
        "| batch | faces/s | vs batch " + str(args.sizes[-1]) + " |",
        "|---|---|---|",
    ]
    lines += [f"| {b} | {v} | {v / medians[args.sizes[-1]]:.2f}x |" for b, v in medians.items()]
    lines += ["", f"Fastest: batch {best}."]
    write_result(args.output, result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
