"""Load test of the HTTP API: N concurrent POST /api/v1/predict against a local server (loopback only).

Starts ``agegender serve`` in a subprocess on 127.0.0.1 (free port), waits for /api/v1/health, sends a
couple of warm-up requests, then fires ``--requests`` requests at once (bounded count and time), and
records latency percentiles, throughput and errors (which must be zero) in
``benchmarks/results/load_test.{json,md}``. Then, with ``--flood N`` (default 24), it sends N huge uploads at once
(``--flood-side`` px square JPEGs, 6000 by default, made from the image with a little noise so they compress
like photos) and records the server's resident memory (``VmRSS``) before the flood, right after it and after
``--settle`` seconds, and its peak (``VmHWM``): memory that stays high after a flood is memory the server keeps.

    python benchmarks/load_test.py                        # the shipped model (agegender/models/default)
    python benchmarks/load_test.py --model runs/x/model   # any model folder
    python benchmarks/load_test.py --tiny-model           # random scratch_cnn: exercises the server only
    python benchmarks/load_test.py --flood 0              # no huge-upload flood
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_IMAGE = REPO / "agegender" / "serving" / "examples" / "astronaut.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model(folder: Path) -> Path:
    """A random-weight scratch_cnn folder: realistic request path, meaningless estimates."""
    from agegender.models.folder import save_model_folder
    from agegender.models.model import ModelConfig, build_model

    return save_model_folder(build_model(ModelConfig(backbone="scratch_cnn", input_size=64)), folder)


def huge_jpeg(image: Path, side: int, seed: int = 0) -> bytes:
    """``image`` scaled to ``side`` x ``side`` with mild noise (sigma 4), JPEG quality 90: a photo-like upload
    (6000 px: about 5 MB), so the flood costs the server what real camera pictures would."""
    with Image.open(image) as img:
        big = np.asarray(img.convert("RGB").resize((side, side), Image.BICUBIC), dtype=np.int16)
    noisy = np.clip(big + np.random.default_rng(seed).normal(0, 4, big.shape), 0, 255).astype(np.uint8)
    del big
    out = io.BytesIO()
    Image.fromarray(noisy).save(out, "JPEG", quality=90)
    return out.getvalue()


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of a process, in MB, from /proc (Linux)."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("VmRSS", "VmHWM"):
            found[key] = round(int(line.split()[1]) / 1024, 1)
    return found


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation): an observed latency, honest for small samples."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Server:
    """``agegender serve`` as a child process; only this process is ever stopped."""

    def __init__(
        self, model: str | None, port: int, concurrency: int, queue_size: int, timeout_s: float, log: Path
    ) -> None:
        cmd = [
            sys.executable,
            "-m",
            "agegender.cli.main",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--concurrency",
            str(concurrency),
            "--queue-size",
            str(queue_size),
            "--timeout",
            str(timeout_s),
            "--log-level",
            "warning",
        ]
        if model:
            cmd += ["--model", model]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "NO_ALBUMENTATIONS_UPDATE": "1"}
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                r = httpx.get(self.url + "/api/v1/health", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"server not ready after {timeout_s:g} s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


async def fire(url: str, image: bytes, name: str, n: int, timeout_s: float) -> tuple[list[dict[str, Any]], float]:
    """Send ``n`` requests at once; returns one record per request and the wall time of the burst."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

        async def one(i: int) -> dict[str, Any]:
            start = time.perf_counter()
            try:
                r = await client.post("/api/v1/predict", files={"file": (name, image, "image/jpeg")})
                record = {"i": i, "status": r.status_code, "latency_s": time.perf_counter() - start}
                if r.status_code == 200:
                    body = r.json()
                    record.update(faces=body["count"], server_s=body.get("seconds"))
                else:
                    record["error"] = r.text[:200]
            except httpx.HTTPError as e:
                record = {
                    "i": i,
                    "status": None,
                    "latency_s": time.perf_counter() - start,
                    "error": f"{type(e).__name__}: {e}",
                }
            return record

        start = time.perf_counter()
        records = await asyncio.gather(*(one(i) for i in range(n)))
        return list(records), time.perf_counter() - start


def summarize(records: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    ok = [r for r in records if r["status"] == 200]
    lat = [r["latency_s"] for r in ok] or [float("nan")]
    server = [r["server_s"] for r in ok if r.get("server_s") is not None] or [float("nan")]
    return {
        "requests": len(records),
        "ok": len(ok),
        "errors": len(records) - len(ok),
        "error_samples": [r.get("error") for r in records if r["status"] != 200][:5],
        "wall_s": round(wall_s, 3),
        "throughput_rps": round(len(ok) / wall_s, 3) if wall_s > 0 else None,
        "latency_s": {
            "p50": round(percentile(lat, 50), 3),
            "p95": round(percentile(lat, 95), 3),
            "max": round(max(lat), 3),
            "mean": round(statistics.fmean(lat), 3),
        },
        "server_inference_s": {"p50": round(percentile(server, 50), 4), "max": round(max(server), 4)},
        "faces_per_image": sorted({r.get("faces") for r in ok}),
    }


def markdown(report: dict[str, Any]) -> str:
    s, m, cfg = report["results"], report["model"], report["config"]
    lines = [
        "# API load test" + (f" ({report['label']})" if report.get("label") else ""),
        "",
        f"- Date: {report['date']}  ",
        f"- Machine: {report['machine']['cpus']} CPUs, {report['machine']['platform']}, load average before "
        f"the run {report['machine']['loadavg_before']} (other jobs may share the CPUs)  ",
        f"- Model: `{m['path']}`{' (tiny random scratch_cnn: tests the server, not the real model)' if m['tiny_random'] else ''}"  # noqa: E501
        f", backbone `{m['info'].get('backbone')}`, detector `{m['info'].get('detector')}`  ",
        f"- Image: `{cfg['image']}` ({cfg['image_bytes']} bytes), {cfg['requests']} concurrent requests over "
        f"loopback; server concurrency {cfg['server_concurrency']}, queue {cfg['queue_size']}, "
        f"timeout {cfg['timeout_s']} s  ",
        "",
        "| requests | ok | errors | wall (s) | throughput (req/s) | p50 (s) | p95 (s) | max (s) | inference p50 (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s['requests']} | {s['ok']} | {s['errors']} | {s['wall_s']} | {s['throughput_rps']} | "
        f"{s['latency_s']['p50']} | {s['latency_s']['p95']} | {s['latency_s']['max']} | "
        f"{s['server_inference_s']['p50']} |",
        *flood_markdown(report.get("flood")),
        "",
        "Latency is measured by the client from sending the request to the full response, so it includes time "
        "waiting in the server's queue: with all requests sent at once, p95 is roughly "
        "requests / throughput. Reproduce with `" + report.get("command", "python benchmarks/load_test.py") + "`.",
        "",
    ]
    return "\n".join(lines)


def run_flood(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """Server memory before and after ``args.flood`` huge uploads sent at once."""
    data = huge_jpeg(args.image, args.flood_side)
    before = memory_mb(server.proc.pid)
    records, wall = asyncio.run(fire(server.url, data, "huge.jpg", args.flood, args.timeout + 10))
    after = memory_mb(server.proc.pid)
    time.sleep(args.settle)
    settled = memory_mb(server.proc.pid)
    return {
        "requests": args.flood,
        "side": args.flood_side,
        "image_bytes": len(data),
        "settle_s": args.settle,
        "rss_mb": {"before": before["VmRSS"], "after": after["VmRSS"], "settled": settled["VmRSS"]},
        "peak_rss_mb": settled["VmHWM"],
        "results": summarize(records, wall),
    }


def flood_markdown(flood: dict[str, Any] | None) -> list[str]:
    if not flood:
        return []
    r, m = flood["results"], flood["rss_mb"]
    return [
        "",
        f"Flood: {flood['requests']} uploads of a {flood['side']}x{flood['side']} JPEG ({flood['image_bytes']} bytes) "
        f"sent at once; server resident memory (MB) before, right after, and {flood['settle_s']:g} s after.",
        "",
        "| ok | errors | wall (s) | RSS before | RSS after | RSS settled | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {r['ok']} | {r['errors']} | {r['wall_s']} | {m['before']} | {m['after']} | {m['settled']} | "
        f"{flood['peak_rss_mb']} |",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="model folder (default: the shipped model)")
    src.add_argument("--tiny-model", action="store_true", help="build and use a random tiny model")
    p.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    p.add_argument("--requests", type=int, default=50, help="concurrent requests (max 200)")
    p.add_argument("--server-concurrency", type=int, default=2)
    p.add_argument("--timeout", type=float, default=120.0, help="per-request timeout, server and client")
    p.add_argument("--startup-timeout", type=float, default=180.0)
    p.add_argument("--flood", type=int, default=24, help="huge uploads sent at once after the burst (0: none)")
    p.add_argument("--flood-side", type=int, default=6000, help="side in px of the square flood images")
    p.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the flood before measuring")
    p.add_argument("--label", default="", help="a note for the report (e.g. which commit)")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--name", default="load_test", help="results file name, without .json/.md")
    args = p.parse_args(argv)
    if not 1 <= args.requests <= 200:
        p.error("--requests must be between 1 and 200")
    if not 0 <= args.flood <= 200:
        p.error("--flood must be between 0 and 200")

    image = args.image.read_bytes()
    args.out.mkdir(parents=True, exist_ok=True)
    loadavg = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="agegender-load-") as tmp:
        model = str(tiny_model(Path(tmp) / "tiny_model")) if args.tiny_model else args.model
        queue = max(args.requests, args.flood)
        server = Server(model, free_port(), args.server_concurrency, queue, args.timeout, Path(tmp) / "server.log")
        try:
            health = server.wait_ready(args.startup_timeout)
            for _ in range(2):  # warm-up: first calls pay for lazy initialisation
                httpx.post(
                    server.url + "/api/v1/predict",
                    files={"file": (args.image.name, image, "image/jpeg")},
                    timeout=args.timeout,
                ).raise_for_status()
            records, wall = asyncio.run(fire(server.url, image, args.image.name, args.requests, args.timeout + 10))
            flood = run_flood(server, args) if args.flood else None
        except Exception:
            server.stop()
            print(Path(server.log.name).read_text()[-3000:], file=sys.stderr)
            raise
        server.stop()

    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_before": loadavg,
        },
        "model": {
            "path": model or "agegender/models/default (shipped)",
            "tiny_random": bool(args.tiny_model),
            "info": health.get("model", {}),
        },
        "config": {
            "requests": args.requests,
            "server_concurrency": args.server_concurrency,
            "queue_size": max(args.requests, args.flood),
            "timeout_s": args.timeout,
            "image": str(args.image.relative_to(REPO) if args.image.is_relative_to(REPO) else args.image),
            "image_bytes": len(image),
        },
        "label": args.label,
        "command": "python benchmarks/load_test.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "results": summarize(records, wall),
        "flood": flood,
        "requests": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in records],
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report["results"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
