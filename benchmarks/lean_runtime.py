"""Cost of the runtime from the shell: one ``agegender predict`` (wall time, peak memory), ``agegender serve``
(time to a healthy API, memory at idle) and batched ONNX faces/s, per Python environment.

Each case is ``LABEL=PYTHON[@TREE]``: that interpreter runs the source tree TREE (default: this checkout) with
``python -m agegender.cli.main`` from a scratch folder, so installs differ only in their packages. Repeats are
interleaved across cases (the machine's load drifts) and reported as medians. Peak memory is the child's
``ru_maxrss`` (``os.wait4``); serve's idle memory is its ``VmRSS`` two seconds after the health check answers.

    python benchmarks/lean_runtime.py --case "full=.venv/bin/python" --case "lean=/tmp/lean/bin/python"
    python benchmarks/lean_runtime.py --case "before=.venv/bin/python@/tmp/agegender-e955ad0" ...

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


def serve_once(python: str, tree: Path, cwd: Path, timeout: float = 120.0) -> tuple[float, float]:
    """Seconds from start to a 200 from GET /api/v1/health, and RSS (MB) at idle right after."""
    port = _free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [python, "-m", "agegender.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=cwd,
        env=_env(tree),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{python} serve exited with {proc.returncode}")
            if time.perf_counter() - start > timeout:
                raise TimeoutError("serve did not become healthy")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        ready = time.perf_counter() - start
        time.sleep(2.0)
        return ready, _rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def faces_per_s(python: str, tree: Path, cwd: Path, repeats: int) -> float:
    out = cwd / "speed.json"
    run_once(
        python, tree, ["benchmark", "speed", "--backends", "onnx", "--repeats", str(repeats), "--output", str(out)], cwd
    )
    return json.loads(out.read_text())["backends"]["onnx"]["faces_per_s_batched"]


def _has(python: str, module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([python, "-c", code], check=False).returncode == 0


def measure(cases: list[tuple[str, str, Path]], repeats: int, speed_repeats: int) -> dict[str, Any]:
    raw: dict[str, dict[str, list[float]]] = {label: {} for label, _, _ in cases}
    with tempfile.TemporaryDirectory(prefix="agegender-lean-") as scratch:
        cwd = Path(scratch)
        for _label, python, tree in cases:  # warm the page cache: first runs measure the disk, not the code
            run_once(python, tree, ["predict", "-q", str(PHOTO)], cwd)
        for _ in range(repeats):
            for label, python, tree in cases:
                wall, peak = run_once(python, tree, ["predict", "-q", str(PHOTO)], cwd)
                raw[label].setdefault("predict_s", []).append(wall)
                raw[label].setdefault("predict_peak_mb", []).append(peak)
                if _has(python, "gradio"):
                    ready, idle = serve_once(python, tree, cwd)
                    raw[label].setdefault("serve_ready_s", []).append(ready)
                    raw[label].setdefault("serve_idle_mb", []).append(idle)
        for label, python, tree in cases:
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
        "| case | predict wall s | predict peak MB | serve ready s | serve idle MB | ONNX faces/s batched |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in result["medians"].items():
        cells = [r.get(k) for k in ("predict_s", "predict_peak_mb", "serve_ready_s", "serve_idle_mb")]
        cells.append(r.get("onnx_faces_per_s"))
        lines.append(f"| {label} | " + " | ".join("-" if c is None else f"{c:g}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", required=True, help="LABEL=PYTHON[@TREE]")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--speed-repeats", type=int, default=7, help="--repeats of `agegender benchmark speed`")
    parser.add_argument("--output", type=Path, default=RESULTS / "lean_runtime.json")
    args = parser.parse_args(argv)
    cases = []
    for spec in args.case:
        label, _, rest = spec.partition("=")
        python, _, tree = rest.partition("@")
        cases.append((label, python, Path(tree).resolve() if tree else REPO))
    result = measure(cases, args.repeats, args.speed_repeats)
    command = "python benchmarks/lean_runtime.py " + " ".join(f'--case "{c}"' for c in args.case)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result, command)
    args.output.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
