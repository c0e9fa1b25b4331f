"""Cost of the runtime from the shell: one ``agegender predict`` (wall time, peak memory), ``agegender serve``
(time to a healthy API, memory at idle) and batched ONNX faces/s, per Python environment.

Each case is ``LABEL=PYTHON[@TREE]``: that interpreter runs the source tree TREE (default: this checkout) with
``python -m agegender.cli.main`` from a scratch folder, so installs differ only in their packages. Repeats are
interleaved across cases (the machine's load drifts) and reported as medians. Peak memory is the child's
``ru_maxrss`` (``os.wait4``). Serve: seconds until ``GET /api/v1/health`` answers (the API is ready), seconds
until the web demo is mounted (health says ``"demo": "ready"``; trees without that field mount it before
serving, so it is the same time), and ``VmRSS`` two seconds after the demo is ready (idle, everything loaded);
where the tree has ``serve --no-demo``, also its ready time and idle memory.

    python benchmarks/lean_runtime.py --case "full=.venv/bin/python" --case "lean=/tmp/lean/bin/python"
    python benchmarks/lean_runtime.py --case "before=.venv/bin/python@/tmp/agegender-e955ad0" ...
    python benchmarks/lean_runtime.py --serve-only --output benchmarks/results/lean_runtime_serve.json ...

Writes ``benchmarks/results/lean_runtime.{json,md}``. Figures, not tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PHOTO = REPO / "agegender" / "serving" / "examples" / "astronaut.jpg"


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "NO_ALBUMENTATIONS_UPDATE": "1", "HF_HUB_OFFLINE": "1"}


def run_once(python: str, tree: Path, args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command in a fresh process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [python, "-m", "agegender.cli.main", *args],
        cwd=cwd,
        env=_env(tree),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{python} {' '.join(args)} exited with {proc.returncode}")
    return wall, usage.ru_maxrss / 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return json.loads(r.read()) if r.status == 200 else None
    except OSError:
        return None


def serve_once(
    python: str, tree: Path, cwd: Path, extra: tuple[str, ...] = (), timeout: float = 180.0
) -> dict[str, float]:
    """Seconds to a healthy API and to a mounted demo, and RSS (MB) at idle 2 s after that."""
    port = _free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [python, "-m", "agegender.cli.main", "serve", "--port", str(port), "--log-level", "warning", *extra],
        cwd=cwd,
        env=_env(tree),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/api/v1/health"
    out: dict[str, float] = {}
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{python} serve exited with {proc.returncode}")
            if time.perf_counter() - start > timeout:
                raise TimeoutError("serve did not become healthy")
            health = _get(url)
            if health is not None:
                out.setdefault("ready_s", time.perf_counter() - start)
                if health.get("demo", "ready") in ("ready", "off"):
                    out["demo_ready_s"] = time.perf_counter() - start
                    break
                if health.get("demo") == "failed":
                    raise RuntimeError("the demo failed to load")
            time.sleep(0.05)
        time.sleep(2.0)
        out["idle_mb"] = _rss_mb(proc.pid)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _has_no_demo(tree: Path) -> bool:
    return "--no-demo" in (tree / "agegender" / "cli" / "serve.py").read_text()


def faces_per_s(python: str, tree: Path, cwd: Path, repeats: int) -> float:
    out = cwd / "speed.json"
    run_once(
        python, tree, ["benchmark", "speed", "--backends", "onnx", "--repeats", str(repeats), "--output", str(out)], cwd
    )
    return json.loads(out.read_text())["backends"]["onnx"]["faces_per_s_batched"]


def _has(python: str, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([python, "-c", code], check=False).returncode == 0


def measure(
    cases: list[tuple[str, str, Path]], repeats: int, speed_repeats: int, serve_only: bool = False
) -> dict[str, Any]:
    raw: dict[str, dict[str, list[float]]] = {label: {} for label, _, _ in cases}
    with tempfile.TemporaryDirectory(prefix="agegender-lean-") as scratch:
        cwd = Path(scratch)
        for _label, python, tree in cases:  # warm the page cache: first runs measure the disk, not the code
            run_once(python, tree, ["predict", "-q", str(PHOTO)], cwd)
        for _ in range(repeats):
            for label, python, tree in cases:
                if not serve_only:
                    wall, peak = run_once(python, tree, ["predict", "-q", str(PHOTO)], cwd)
                    raw[label].setdefault("predict_s", []).append(wall)
                    raw[label].setdefault("predict_peak_mb", []).append(peak)
                if _has(python, "gradio"):
                    served = serve_once(python, tree, cwd)
                    raw[label].setdefault("serve_ready_s", []).append(served["ready_s"])
                    raw[label].setdefault("serve_demo_ready_s", []).append(served["demo_ready_s"])
                    raw[label].setdefault("serve_idle_mb", []).append(served["idle_mb"])
                if _has_no_demo(tree):
                    served = serve_once(python, tree, cwd, ("--no-demo",))
                    raw[label].setdefault("no_demo_ready_s", []).append(served["ready_s"])
                    raw[label].setdefault("no_demo_idle_mb", []).append(served["idle_mb"])
        for label, python, tree in cases:
            if not serve_only:
                raw[label]["onnx_faces_per_s"] = [faces_per_s(python, tree, cwd, speed_repeats)]
    medians = {label: {k: round(statistics.median(v), 3) for k, v in m.items()} for label, m in raw.items()}
    return {
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "repeats": repeats,
        "photo": str(PHOTO.relative_to(REPO)),
        "cases": {label: {"python": python, "tree": str(tree)} for label, python, tree in cases},
        "medians": medians,
        "runs": raw,
    }


def markdown(result: dict[str, Any], command: str) -> str:
    m = result["machine"]
    lines = [
        f"Runtime cost on {m['cpu_count']} CPU cores, medians of {result['repeats']} interleaved runs "
        f"(`{command}`); predict: `agegender predict {result['photo']}` from the shell",
        "",
        "| case | predict wall s | predict peak MB | serve: API ready s | serve: demo ready s | serve idle MB "
        "| serve --no-demo: ready s | serve --no-demo: idle MB | ONNX faces/s batched |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = ("predict_s", "predict_peak_mb", "serve_ready_s", "serve_demo_ready_s", "serve_idle_mb")
    keys += ("no_demo_ready_s", "no_demo_idle_mb", "onnx_faces_per_s")
    for label, r in result["medians"].items():
        cells = [r.get(k) for k in keys]
        lines.append(f"| {label} | " + " | ".join("-" if c is None else f"{c:g}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", required=True, help="LABEL=PYTHON[@TREE]")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--speed-repeats", type=int, default=7, help="--repeats of `agegender benchmark speed`")
    parser.add_argument("--serve-only", action="store_true", help="measure `agegender serve` only")
    parser.add_argument("--output", type=Path, default=RESULTS / "lean_runtime.json")
    args = parser.parse_args(argv)
    cases = []
    for spec in args.case:
        label, _, rest = spec.partition("=")
        python, _, tree = rest.partition("@")
        cases.append((label, python, Path(tree).resolve() if tree else REPO))
    result = measure(cases, args.repeats, args.speed_repeats, args.serve_only)
    command = "python benchmarks/lean_runtime.py " + " ".join(f'--case "{c}"' for c in args.case)
    if args.serve_only:
        command += f" --serve-only --repeats {args.repeats} --output {args.output}"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result, command)
    args.output.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
