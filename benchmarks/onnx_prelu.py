"""What writing PReLU as relu(x)(1-a)+a*x in the ONNX export buys under ONNX Runtime on this CPU.

Exports the model twice (PReLU kept / rewritten), then, interleaved in one run: batched faces/s and single-face
latency (medians), and ONNX Runtime's profile of where the time goes (share per operator). Writes
``benchmarks/results/onnx_prelu.{json,md}``.

    python benchmarks/onnx_prelu.py                      # the shipped model
    python benchmarks/onnx_prelu.py --model runs/x/model
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import publish_result

from agegender.models.export import OUTPUT_NAMES, export_onnx
from agegender.models.folder import DEFAULT_MODEL_DIR, load_model_folder


def _session(path: Path, threads: int, profile: bool = False):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_profiling = profile
    if profile:
        opts.profile_file_prefix = str(path.with_suffix(""))
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _op_shares(path: Path, x: np.ndarray, threads: int) -> dict[str, float]:
    sess = _session(path, threads, profile=True)
    for _ in range(3):
        sess.run(None, {"image": x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    per_op: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node":
            per_op[e["args"].get("op_name", "?")] += e["dur"]
    total = sum(per_op.values()) or 1
    return {op: round(100 * t / total, 1) for op, t in per_op.most_common(6)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/onnx_prelu.json"))
    args = ap.parse_args(argv)
    net = load_model_folder(args.model)
    size = net.input_size
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(args.batch_size, 3, size, size)).astype(np.float32)
    one = batch[:1]
    with tempfile.TemporaryDirectory() as tmp:
        paths = {
            "prelu kept": export_onnx(net, Path(tmp) / "kept.onnx", rewrite_prelu=False),
            "prelu rewritten": export_onnx(net, Path(tmp) / "rewritten.onnx"),
        }
        sessions = {k: _session(p, args.threads) for k, p in paths.items()}
        times: dict[str, dict[str, list[float]]] = {k: {"batch": [], "one": []} for k in paths}
        outputs = {k: s.run(None, {"image": batch}) for k, s in sessions.items()}  # also the warm-up
        for _ in range(args.repeats):  # interleaved, so CPU speed swings hit both alike
            for k, sess in sessions.items():
                for name, x in (("batch", batch), ("one", one)):
                    t = time.perf_counter()
                    sess.run(None, {"image": x})
                    times[k][name].append(time.perf_counter() - t)
        shares = {k: _op_shares(p, batch, args.threads) for k, p in paths.items()}
    kept, rewritten = outputs["prelu kept"], outputs["prelu rewritten"]
    rows = {
        k: {
            "faces_per_s_batched": round(args.batch_size / statistics.median(v["batch"]), 1),
            "single_face_ms": round(1000 * statistics.median(v["one"]), 2),
            "op_time_share_pct": shares[k],
        }
        for k, v in times.items()
    }
    result = {
        "model": str(args.model),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "max_abs_diff": {n: float(np.abs(a - b).max()) for n, a, b in zip(OUTPUT_NAMES, kept, rewritten, strict=True)},
        "variants": rows,
    }
    md = [
        f"ONNX Runtime, {args.threads} threads on {os.cpu_count()} cores, batch {args.batch_size}, medians of "
        f"{args.repeats} interleaved runs; `python benchmarks/onnx_prelu.py` ({args.model})",
        "",
        "| export | faces/s batched | single face ms | top operators (% of node time) |",
        "|---|---|---|---|",
    ]
    for k, r in rows.items():
        ops = ", ".join(f"{op} {pct}" for op, pct in r["op_time_share_pct"].items())
        md.append(f"| {k} | {r['faces_per_s_batched']} | {r['single_face_ms']} | {ops} |")
    md.append("")
    md.append(f"Largest output difference between the two graphs: {result['max_abs_diff']}")
    text = "\n".join(md) + "\n"
    return publish_result(args.output, result, text)


if __name__ == "__main__":
    raise SystemExit(main())
