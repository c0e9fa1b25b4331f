"""Training-step speed on this CPU: which of tcmalloc, channels_last and bf16 autocast help, as ratios.

Each variant runs in its own process (LD_PRELOAD must be set before Python starts), the variants are
interleaved over several rounds and medians are taken, because this machine's CPU speed swings up to 3x.

    python benchmarks/train_speed.py --backbone mobilenet_v2 --size 128 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
VARIANTS = {  # name: (tcmalloc, channels_last, bf16)
    "baseline (NCHW, fp32)": (False, False, False),
    "channels_last": (False, True, False),
    "channels_last + tcmalloc": (True, True, False),
    "channels_last + tcmalloc + bf16": (True, True, True),
}


def step_time(backbone: str, size: int, batch: int, channels_last: bool, bf16: bool, steps: int) -> float:
    """Median seconds of one AdamW training step (forward, backward, update) on a random batch."""
    import torch

    from agegender.models.model import ModelConfig, build_model

    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone=backbone, input_size=size)).train()
    x = torch.randn(batch, 3, size, size)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
            loss = out["age"].float().mean() + out["gender"].float().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step pays one-off kernel selection
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="mobilenet_v2")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--output", default="benchmarks/results/train_speed.json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        cl, bf16 = (v == "1" for v in args.child)
        print(step_time(args.backbone, args.size, args.batch, cl, bf16, args.steps))
        return 0
    have_tcmalloc = Path(TCMALLOC).is_file()
    samples: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(args.rounds):
        for name, (tc, cl, bf16) in VARIANTS.items():
            if tc and not have_tcmalloc:
                continue
            env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
            if tc:
                env["LD_PRELOAD"] = TCMALLOC
            cmd = [
                sys.executable,
                __file__,
                "--backbone",
                args.backbone,
                "--size",
                str(args.size),
                "--batch",
                str(args.batch),
                "--steps",
                str(args.steps),
                "--child",
                str(int(cl)),
                str(int(bf16)),
            ]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            samples[name].append(float(out.stdout.strip().splitlines()[-1]))
    base = statistics.median(samples["baseline (NCHW, fp32)"])
    rows = {}
    for name, vals in samples.items():
        if vals:
            med = statistics.median(vals)
            rows[name] = {
                "median_step_s": round(med, 3),
                "images_per_s": round(args.batch / med, 1),
                "speedup_vs_baseline": round(base / med, 2),
                "samples": [round(v, 3) for v in vals],
            }
    result = {
        "backbone": args.backbone,
        "size": args.size,
        "batch": args.batch,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "tcmalloc": have_tcmalloc,
        "variants": rows,
    }
    lines = [
        f"Training step, {args.backbone} {args.size}px batch {args.batch}, {os.cpu_count()} CPUs, "
        f"medians of {args.rounds} interleaved rounds",
        "",
        "| variant | step s | images/s | speed-up |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {r['median_step_s']} | {r['images_per_s']} | {r['speedup_vs_baseline']}x |" for n, r in rows.items()
    ]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
