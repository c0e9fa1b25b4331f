"""Speed benchmark: batched faces/s, single-face latency and end-to-end photos/s, per backend."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _median_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


#: The photo the package ships (so a plain install, without scikit-image, can run the benchmark).
SAMPLE_PHOTO = Path(__file__).resolve().parents[1] / "serving" / "examples" / "astronaut.jpg"


def _sample_photo() -> np.ndarray:
    from agegender.data.images import load_image

    return load_image(SAMPLE_PHOTO)


def benchmark_speed(
    model: str | Path | None = None,
    backends: tuple[str, ...] = ("torch", "onnx"),
    batch_size: int = 64,
    repeats: int = 7,
    threads: int | None = None,
    photos: list[str] | None = None,
) -> dict:
    """Measure each backend on this machine; medians of ``repeats`` runs after warm-up."""
    from agegender.data.images import load_image
    from agegender.inference.predictor import Predictor

    threads = threads or os.cpu_count() or 1
    imgs = [load_image(p) for p in photos] if photos else [_sample_photo()]
    rng = np.random.default_rng(0)
    out: dict = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": threads,
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "model": str(model) if model else "default",
        "batch_size": batch_size,
        "repeats": repeats,
        "backends": {},
    }
    for backend in backends:
        pred = Predictor.load(model, backend=backend, threads=threads)
        eng = pred.engine
        size = pred.engine.pre.size
        batch = rng.normal(size=(batch_size, 3, size, size)).astype(np.float32)
        one = batch[:1]
        crops = [rng.integers(0, 255, (200, 200, 3), dtype=np.uint8) for _ in range(batch_size)]
        t_batch = _median_time(lambda b=batch, e=eng: e.run(b), repeats)
        t_one = _median_time(lambda o=one, e=eng: e.run(o), repeats * 5)
        t_pre = _median_time(lambda c=crops, e=eng: e.pre(c), repeats)
        t_photo = _median_time(lambda p=pred: [p.predict(i) for i in imgs], max(3, repeats // 2), warmup=1)
        out["backends"][backend] = {
            "faces_per_s_batched": round(batch_size / t_batch, 1),
            "faces_per_s_batched_with_preprocessing": round(batch_size / (t_batch + t_pre), 1),
            "single_face_latency_ms": round(1000 * t_one, 2),
            "photos_per_s_end_to_end": round(len(imgs) / t_photo, 2),
            "input_size": size,
        }
    return out


def format_speed(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"Speed on {m['cpu_count']} CPU cores ({m['threads']} threads), model {result['model']}, "
        f"batch {result['batch_size']}, medians of {result['repeats']} runs",
        "",
        "| backend | faces/s batched | faces/s incl. preprocessing | single face ms | photos/s with detection |",
        "|---|---|---|---|---|",
    ]
    for name, b in result["backends"].items():
        lines.append(
            f"| {name} | {b['faces_per_s_batched']} | {b['faces_per_s_batched_with_preprocessing']} | "
            f"{b['single_face_latency_ms']} | {b['photos_per_s_end_to_end']} |"
        )
    return "\n".join(lines)
