"""``agegender data align``: turn labelled in-the-wild photos into the chips the models are trained on.

Training must see exactly what prediction sees. Each photo goes through the same decoder, detector and
aligner as :class:`agegender.inference.predictor.Predictor`; the main face (largest and most central) is
written losslessly as a PNG chip, so the chip on disk is, pixel for pixel, the crop prediction would feed
the network. A manifest carries the labels over, with the content hash of the source photo, so a split
keeps every chip on the side of the photo it came from.

The work is resumable: every photo's outcome is appended to ``align_log.jsonl`` as it finishes, and a re-run
skips photos already logged.
"""

from __future__ import annotations

import csv
import json
import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from agegender.data.images import ImageError, decode_image, digest_bytes
from agegender.data.readers import read_dataset
from agegender.data.records import DataError, FaceRecord
from agegender.faces.select import main_face_index

log = logging.getLogger(__name__)

LOG_FILE = "align_log.jsonl"
MANIFEST_FILE = "labels.csv"
REPORT_FILE = "align_report.json"
MANIFEST_COLUMNS = [
    "path",
    "age",
    "gender",
    "race",
    "source",
    "source_digest",
    "faces",
    "face_px",
    "score",
    "status",
    "reasons",
    "quality",
]


@dataclass(frozen=True)
class AlignJob:
    """One photo to align; ``key`` names its chip and its log entry."""

    key: str
    path: str
    age: float | None
    gender: int | None
    race: int | None


_DETECTOR: Any = None


def _init_worker(detector: str, threads: int) -> None:
    """Each process builds its own detector once; one thread each, so N processes use N cores."""
    global _DETECTOR
    cv2.setNumThreads(threads)
    from agegender.faces.detectors import create_detector, detector_takes

    threaded = detector_takes(detector, "num_threads")
    _DETECTOR = create_detector(detector, **({"num_threads": threads} if threaded else {}))


def chip_for_photo(image: np.ndarray, detector: Any) -> tuple[Any | None, int]:
    """The main face of a photo as the aligned :class:`~agegender.faces.align.FaceCrop`, and how many faces
    were found. Uses :func:`extract_faces` exactly as prediction does."""
    from agegender.faces.align import extract_faces

    faces = extract_faces(image, detector)
    if not faces:
        return None, 0
    best = main_face_index([f.detection.box for f in faces], image.shape)
    return faces[best], len(faces)


def _align_one(job: AlignJob, out_dir: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"key": job.key, "source": job.path, "age": job.age, "gender": job.gender}
    entry["race"] = job.race
    try:
        data = Path(job.path).read_bytes()
        entry["source_digest"] = digest_bytes(data)
        image = decode_image(data, job.path)
    except (OSError, ImageError) as e:
        return {**entry, "outcome": "unreadable", "message": str(e)}
    face, n = chip_for_photo(image, _DETECTOR)
    entry["faces"] = n
    if face is None:
        return {**entry, "outcome": "no_face", "message": "no face found"}
    chip_rel = f"images/{job.key}.png"
    tmp = Path(out_dir) / f"images/.{job.key}.tmp.png"
    cv2.imwrite(str(tmp), cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR))
    tmp.replace(Path(out_dir) / chip_rel)
    det = face.detection
    return {
        **entry,
        "outcome": "ok",
        "path": chip_rel,
        "face_px": round(float(det.size), 1),
        "score": round(float(det.score), 4),
        "status": face.status,
        "reasons": face.reasons,
        "quality": round(float(face.quality), 3),
        "blur": round(float(face.measures.get("blur", float("nan"))), 2),
    }


def _read_log(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill: that photo is simply done again
            done[entry["key"]] = entry
    return done


def _job_key(rec: FaceRecord, root: Path) -> str:
    """A stable, file-name-safe key per photo: its path below the source root."""
    try:
        rel = rec.path.resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(rec.path.name)
    return str(rel.with_suffix("")).replace(os.sep, "__").replace(" ", "_")


def _run(jobs: Sequence[AlignJob], out_dir: Path, detector: str, workers: int, progress: bool) -> Iterator[dict]:
    if workers <= 1:
        _init_worker(detector, max(1, os.cpu_count() or 1))
        for job in tqdm(jobs, desc="aligning", unit="photo", disable=not progress):
            yield _align_one(job, str(out_dir))
        return
    # spawn, not fork: a parent that has started thread pools (torch, ONNX Runtime) can deadlock forked children
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(detector, 1)) as pool:
        results = pool.map(_align_one, jobs, [str(out_dir)] * len(jobs), chunksize=8)
        yield from tqdm(results, total=len(jobs), desc="aligning", unit="photo", disable=not progress)


def align_dataset(
    source: str | Path,
    out_dir: str | Path,
    fmt: str = "auto",
    detector: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    redo_failed: bool = False,
) -> dict[str, Any]:
    """Align every labelled photo of ``source`` into ``out_dir`` (chips, ``labels.csv``, a report).

    Returns the report: photos in, chips written, failures by reason with examples, quality flags. Photos
    already in the log are skipped; ``redo_failed`` tries the ones without a chip again.
    """
    from agegender.faces.detectors import check_detector_spec

    check_detector_spec(detector)  # a bad name or option: one clear error now, not one per worker process
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    reading = read_dataset(source, fmt, progress=progress)
    root = Path(source) if Path(source).is_dir() else Path(source).parent
    records = [r for r in reading.records if r.labelled]
    if not records:
        raise DataError(f"{source}: no labelled photos to align")
    log_path = out / LOG_FILE
    done = _read_log(log_path)
    if redo_failed:  # e.g. after a detector improved: photos without a chip are tried again
        done = {k: e for k, e in done.items() if e.get("outcome") == "ok"}
    jobs = [
        AlignJob(_job_key(r, root), str(r.path), r.age, r.gender, r.race)
        for r in records
        if _job_key(r, root) not in done
    ]
    if done:
        log.info("%d photos already aligned in %s; %d to go", len(records) - len(jobs), out, len(jobs))
    workers = workers or max(1, os.cpu_count() or 1)
    with log_path.open("a") as f:
        for entry in _run(jobs, out, detector, workers, progress):
            f.write(json.dumps(entry) + "\n")
            f.flush()
            done[entry["key"]] = entry
    keys = {_job_key(r, root) for r in records}
    entries = [done[k] for k in sorted(keys) if k in done]
    _write_manifest(out / MANIFEST_FILE, entries)
    report = _report(source, out, entries, reading.report.to_dict(), detector)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _write_manifest(path: Path, entries: list[dict]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, MANIFEST_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for e in entries:
            if e.get("outcome") == "ok":
                w.writerow({**e, "race": "" if e.get("race") is None else e["race"], "reasons": ";".join(e["reasons"])})
    tmp.replace(path)


def _report(source: str | Path, out: Path, entries: list[dict], read_report: dict, detector: str) -> dict[str, Any]:
    outcomes = Counter(e["outcome"] for e in entries)
    failed: dict[str, list[str]] = {}
    for e in entries:
        if e["outcome"] != "ok":
            failed.setdefault(e["outcome"], []).append(f"{e['source']}: {e.get('message', '')}")
    ok = [e for e in entries if e["outcome"] == "ok"]
    flags = Counter(r for e in ok for r in e.get("reasons", []))
    sizes = np.array([e["face_px"] for e in ok]) if ok else np.zeros(0)
    return {
        "source": str(source),
        "output": str(out),
        "detector": detector,
        "photos": len(entries),
        "chips_written": outcomes.get("ok", 0),
        "failed": {k: {"count": len(v), "examples": v[:10]} for k, v in failed.items()},
        "several_faces": sum(1 for e in ok if e.get("faces", 0) > 1),
        "flagged": dict(flags),
        "face_px_percentiles": {str(q): float(np.percentile(sizes, q)) for q in (5, 25, 50, 75, 95)} if ok else {},
        "read_report": read_report,
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{report['source']} -> {report['output']} (detector {report['detector']})",
        f"  photos: {report['photos']}, chips written: {report['chips_written']}, "
        f"photos with several faces (main one kept): {report['several_faces']}",
    ]
    for kind, info in sorted(report["failed"].items()):
        lines.append(f"  failed {info['count']} x {kind}: " + "; ".join(info["examples"][:3]))
    if report["flagged"]:
        lines.append("  flagged (kept): " + ", ".join(f"{k} {v}" for k, v in sorted(report["flagged"].items())))
    if report["face_px_percentiles"]:
        p = report["face_px_percentiles"]
        lines.append(f"  face size px: 5% {p['5']:.0f}, median {p['50']:.0f}, 95% {p['95']:.0f}")
    return "\n".join(lines)
