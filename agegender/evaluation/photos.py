"""End-to-end evaluation on labelled photos: detection, alignment, the network and the answer a person reads.

Chip-level figures (``evaluate`` on aligned faces) say how good the network is; these say how good the tool
is on real photos: how many photos get an estimate at all, how far off it is per age band, and whether the
80% interval is honest, separately for faces flagged as low quality.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from agegender.data.images import ImageError, load_image
from agegender.data.records import FaceRecord
from agegender.data.splits import AGE_BANDS, age_band
from agegender.evaluation.metrics import compute_metrics, compute_slices
from agegender.inference.batch import main_face
from agegender.inference.predictor import FaceResult, Predictor, split_error

log = logging.getLogger(__name__)


def _coverage(rows: list[dict]) -> dict[str, Any]:
    """Share of true ages inside the reported 80% interval, and the age MAE, for all faces and per quality flag:
    whether a flag marks faces whose answers are worse."""

    def cov(sel: list[dict]) -> dict[str, Any]:
        sel = [r for r in sel if r["age_low"] is not None]
        if not sel:
            return {"n": 0, "coverage": None, "mae": None}
        inside = [r["age_low"] <= r["age_true"] <= r["age_high"] for r in sel]
        mae = float(np.mean([abs(r["age"] - r["age_true"]) for r in sel]))
        return {"n": len(sel), "coverage": float(np.mean(inside)), "mae": mae}

    out = {"all": cov(rows), "ok": cov([r for r in rows if not r["reasons"]])}
    out["flagged"] = cov([r for r in rows if r["reasons"]])
    for reason in sorted({x for r in rows for x in r["reasons"]}):
        out[reason] = cov([r for r in rows if reason in r["reasons"]])
    return out


def evaluate_photos(
    predictor: Predictor, records: Sequence[FaceRecord], chunk: int = 16, progress: bool = True
) -> dict[str, Any]:
    """Predict every labelled photo end to end and score the main face (largest and most central).

    Returns overall metrics on the photos that got an estimate, per-slice figures (with the mean signed error
    per age band), interval coverage per quality flag, and every photo without an estimate with the reason.
    """
    records = [r for r in records if r.labelled]
    rows: list[dict] = []
    missing: list[dict] = []
    for rec, image, faces, error in _predict_all(predictor, records, chunk, progress):
        face = main_face(faces, image.shape) if image is not None and faces else None
        face = face if face is not None and face.age is not None else None
        if face is None:
            why = error or ("no face found" if not faces else "; ".join(f.message for f in faces))
            missing.append({"path": str(rec.path), "reason": why})
            continue
        rows.append(
            {
                "path": str(rec.path),
                "age_true": float(rec.age),  # type: ignore[arg-type]
                "gender_true": int(rec.gender),  # type: ignore[arg-type]
                "race": rec.race,
                "age": float(face.age),  # type: ignore[arg-type]
                "age_low": face.age_low,
                "age_high": face.age_high,
                "p_female": float(face.p_female),  # type: ignore[arg-type]
                "faces": len(faces),
                "status": face.status,
                "reasons": list(getattr(face, "reasons", None) or []),
            }
        )
    at = np.array([r["age_true"] for r in rows])
    ap = np.array([r["age"] for r in rows])
    gt = np.array([r["gender_true"] for r in rows], dtype=int)
    gp = np.array([r["p_female"] >= 0.5 for r in rows], dtype=int)
    overall = compute_metrics(at, ap, gt, gp)
    if rows:
        overall["mean_error"] = float(np.mean(ap - at))
    return {
        "detector": getattr(predictor.detector, "name", type(predictor.detector).__name__),
        "photos": len(records),
        "estimated": len(rows),
        "estimated_share": len(rows) / max(1, len(records)),
        "flagged": sum(1 for r in rows if r["reasons"]),
        "flags": dict(Counter(x for r in rows for x in r["reasons"])),
        "overall": overall,
        "slices": compute_slices(at, ap, gt, gp, [r["race"] for r in rows]) if rows else {},
        "interval_coverage": _coverage(rows),
        "without_estimate": missing,
        "rows": rows,
    }


def _load(rec: FaceRecord) -> tuple[np.ndarray | None, str]:
    try:
        return load_image(rec.path), ""
    except ImageError as e:
        return None, str(e)


def _predict_all(
    predictor: Predictor, records: Sequence[FaceRecord], chunk: int, progress: bool
) -> Iterator[tuple[FaceRecord, np.ndarray | None, list[FaceResult], str]]:
    """(record, image, faces, error) per photo, decoding the next photos on two threads."""
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        tqdm(total=len(records), desc="photos", unit="photo", disable=not progress) as bar,
    ):
        for start in range(0, len(records), chunk):
            part = records[start : start + chunk]
            loaded = list(pool.map(_load, part))
            good = [img for img, _ in loaded if img is not None]
            faces_iter = iter(predictor.predict_batch(good) if good else [])
            for rec, (img, err) in zip(part, loaded, strict=True):
                faces, err = split_error(next(faces_iter)) if img is not None else ([], err)
                yield rec, (None if err else img), faces, err
            bar.update(len(part))


#: In a model folder: end-to-end figures on photos, one entry per data and split (``evaluate --photos --write``).
PHOTOS_FILE = "metrics_photos.json"
#: Age bands of the summary's signed errors (the project's bands): where a bias shows first.
SUMMARY_BANDS = tuple(age_band(lo) for lo, _ in AGE_BANDS)


def photo_summary(result: dict[str, Any], dataset: str, split: str, split_file: str | None = None) -> dict[str, Any]:
    """The part of :func:`evaluate_photos`'s result a model card shows: where the photos came from, counts, overall
    figures, per age band the mean signed error and MAE."""
    bands = result.get("slices", {}).get("age_band", {})
    return {
        "data": f"{dataset}, {split} split" + (f" of {split_file}" if split_file else ""),
        "dataset": dataset,
        "split": split,
        "detector": result.get("detector"),
        "photos": result["photos"],
        "estimated": result["estimated"],
        "flagged": result["flagged"],
        "overall": {k: result["overall"].get(k) for k in ("n", "mae", "rmse", "gender_acc", "score", "mean_error")},
        "bands": {b: {k: bands[b].get(k) for k in ("n", "mae", "mean_error")} for b in SUMMARY_BANDS if b in bands},
    }


def format_photos(summary: dict[str, Any]) -> str:
    """Two lines for the terminal: counts and figures, then the signed error per age band."""
    o = summary["overall"]
    head = f"{summary['data']}: {summary['estimated']}/{summary['photos']} photos with an estimate"
    if not o.get("n"):
        return head
    bands = ", ".join(f"{b} {m['mean_error']:+.1f}" for b, m in summary["bands"].items() if m.get("n"))
    return (
        f"{head}, {summary['flagged']} flagged; MAE {o['mae']:.2f} RMSE {o['rmse']:.2f} "
        f"gender {o['gender_acc']:.1%} score {o['score']:.3f}\nmean signed error by age band: {bands}"
    )
