"""Images/s of ``agegender predict --engine ray`` with 1 and 2 workers here, and what each stage costs per core.

Two workloads: UTKFace chips (already faces: ``detect=False``, the network dominates) and full photos (face
detection and alignment first). For each, the Ray job runs end to end into a fresh Parquet folder (reading,
decoding, prediction on actors, writing), with 1 and then 2 workers, on a local Ray started with 2 CPUs. The
same job on the first half of the files cancels the fixed cost of a job (scheduling, actor start-up, model
load): the steady rate is ``(images - half) / (wall - wall of half)``. Then each stage is timed in this process
on one thread, per image, to show where the time goes: read bytes, decode, detect + align, network, write.

    python benchmarks/ray_scale.py      # ../shared/data/utkface/images and ../shared/data/wild
    python benchmarks/ray_scale.py --chips 2000 --photos 60 --output benchmarks/results/ray_scale.json

Writes ``benchmarks/results/ray_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import ray

from agegender.data.images import IMAGE_EXTENSIONS, decode_image
from agegender.inference.batch import predict_loaded, write_result
from agegender.integrations import ray as engine

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _images(folder: Path, n: int, work: Path) -> list[str]:
    """``n`` image files from ``folder``: its own files, or copies of them in ``work`` when it has fewer."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
    if len(files) >= n:
        return [str(p) for p in files]
    work.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = files[i % len(files)]
        dst = work / f"{i:04d}_{src.name}"
        shutil.copy(src, dst)
        out.append(str(dst))
    return out


def _ray_job(files: list[str], out: Path, workers: int, detect: bool, batch_size: int, repeats: int) -> float:
    """Best wall time of ``repeats`` jobs into a fresh folder: the machine is shared, the minimum is the job's."""
    walls = []
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        report = engine.predict_to_parquet(files, str(out), workers=workers, batch_size=batch_size, detect=detect)
        walls.append(time.perf_counter() - start)
        assert report.predicted == len(files), report
    return min(walls)


def _stages(files: list[str], detect: bool, work: Path) -> dict[str, float]:
    """Milliseconds per image for each stage, one thread (what one actor spends on one core)."""
    predictor = engine.FacePredictor(detect=detect, threads=1).predictor
    t0 = time.perf_counter()
    data = [Path(f).read_bytes() for f in files]
    t1 = time.perf_counter()
    images = [decode_image(d, f) for d, f in zip(data, files, strict=True)]
    t2 = time.perf_counter()
    results = predict_loaded(predictor, [(f, None, img, "") for f, img in zip(files, images, strict=True)], detect)
    t3 = time.perf_counter()
    crops = []
    if detect:  # the network alone, on the aligned crops the detector produced
        crops = [face.crop for img in images for face in predictor._faces(img, predictor.quality_filter)]
        t4 = time.perf_counter()
        predictor.predict_batch(crops, detect=False)
        net = time.perf_counter() - t4
    else:
        net = t3 - t2
    t5 = time.perf_counter()
    pq.write_table(engine.results_table(results), work / "stage.parquet")
    t6 = time.perf_counter()
    n = len(files)
    return {
        "read_ms": 1000 * (t1 - t0) / n,
        "decode_ms": 1000 * (t2 - t1) / n,
        "detect_align_ms": 1000 * (t3 - t2 - net) / n if detect else 0.0,
        "network_ms": 1000 * net / n,
        "write_ms": 1000 * (t6 - t5) / n,
        "faces_per_image": (len(crops) if detect else n) / n,
        "mean_bytes": sum(map(len, data)) / n,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utkface", type=Path, default=SHARED / "data" / "utkface" / "images")
    ap.add_argument("--wild", type=Path, default=SHARED / "data" / "wild")
    ap.add_argument("--chips", type=int, default=2000, help="UTKFace chips to predict")
    ap.add_argument("--photos", type=int, default=60, help="photos (copies of the wild photos when fewer)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2, help="jobs per measurement (the fastest counts)")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/ray_scale.json"))
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    cores = os.cpu_count() or 1
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="ray-scale-") as tmp:
        work = Path(tmp)
        workloads = [
            ("UTKFace chips (no detection)", _images(args.utkface, args.chips, work / "chips"), False),
            ("photos (detection + alignment)", _images(args.wild, args.photos, work / "photos"), True),
        ]
        engine.connect(num_cpus=min(2, cores), quiet=True)
        try:
            for name, files, detect in workloads:
                for workers in (1, 2):
                    half = files[: len(files) // 2]
                    wall_half = _ray_job(half, work / "out", workers, detect, args.batch_size, args.repeats)
                    wall = _ray_job(files, work / "out", workers, detect, args.batch_size, args.repeats)
                    rate = (len(files) - len(half)) / max(wall - wall_half, 1e-9)
                    rows.append(
                        {
                            "workload": name,
                            "images": len(files),
                            "workers": workers,
                            "wall_s": wall,
                            "images_per_s": len(files) / wall,
                            "fixed_s": wall - len(files) / rate,
                            "steady_images_per_s": rate,
                        }
                    )
                    print(f"{name}: {workers} worker(s) {len(files)} images in {wall:.1f} s", file=sys.stderr)
        finally:
            ray.shutdown()
        stages = {name: _stages(files[: min(len(files), 300)], detect, work) for name, files, detect in workloads}
    result = {
        "command": shlex.join(["python", "benchmarks/ray_scale.py", *(sys.argv[1:] if argv is None else argv)]),
        "cores": cores,
        "ray_num_cpus": min(2, cores),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "ray": ray.__version__,
        "python": platform.python_version(),
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in rows],
        "stages_ms_per_image_one_thread": {k: {s: round(v, 3) for s, v in d.items()} for k, d in stages.items()},
    }
    write_result(args.output, result, _markdown(result))
    print(_markdown(result))
    return 0


def _markdown(r: dict) -> str:
    lines = [
        f"Ray Data batch prediction on {r['cores']} cores (Ray started with num_cpus={r['ray_num_cpus']}), ray "
        f"{r['ray']}, batch {r['batch_size']}, best of {r['repeats']} jobs; load average (1, 5, 15 min) before "
        f"{r['load_average_before']}, after {r['load_average_after']}: other work shared the cores.",
        f"Command: `{r['command']}`",
        "",
        "| workload | images | workers | wall s | images/s | fixed cost of a job s | steady images/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for x in r["runs"]:
        lines.append(
            f"| {x['workload']} | {x['images']} | {x['workers']} | {x['wall_s']:.1f} | {x['images_per_s']:.1f} "
            f"| {x['fixed_s']:.1f} | {x['steady_images_per_s']:.1f} |"
        )
    lines += [
        "",
        "Per image, one thread (ms):",
        "",
        "| workload | read | decode | detect + align | network | write | faces/image | mean file KB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in r["stages_ms_per_image_one_thread"].items():
        lines.append(
            f"| {name} | {s['read_ms']:.2f} | {s['decode_ms']:.2f} | {s['detect_align_ms']:.1f} | {s['network_ms']:.2f}"
            f" | {s['write_ms']:.3f} | {s['faces_per_image']:.2f} | {s['mean_bytes'] / 1024:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
