"""``agegender calibrate``: measure how honest a model's 80% age interval is on real photos, per quality flag,
and fit the widening factors that make it honest (written to the model folder's ``config.json``).

Flagged faces (small, blurry, ...) are rare in any labelled set, so besides each photo as it is, the photos are
also run as a person's worse copies would be: shrunk until the face is ~28 px, and blurred as a shaky or
out-of-focus shot. Every face goes through detection, alignment and the network, as in prediction. The factors
are fitted on one half of the photos and checked on the other (split by content hash), both ways, so the
coverage reported is measured on photos the factor was not fitted on.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from agegender.data.images import ImageError, load_image
from agegender.data.records import FaceRecord
from agegender.errors import ConfigError
from agegender.inference.batch import main_face
from agegender.inference.calibration import INTERVAL_LEVEL, central_z, fit_interval_scale, interval_coverage
from agegender.inference.predictor import Predictor
from agegender.models.folder import read_config

log = logging.getLogger(__name__)

#: Face size (px, shorter box side) the shrunk copy aims at: well inside the "small" flag (< 40 px).
SMALL_FACE_PX = 28.0
#: Gaussian blur of the blurred copy, in pixels of a 200 px face chip (sigma 2 takes a median chip's
#: sharpness from 47 to 8, below the "blurry" threshold of 11.8).
BLUR_SIGMA_CHIP = 2.5
#: A reason gets its own factor only with at least this many faces; otherwise the pooled "flagged" factor.
MIN_FACES_PER_REASON = 40


def _variants(image: np.ndarray, face_px: float) -> dict[str, np.ndarray]:
    """The worse copies of a photo whose main face is ``face_px`` pixels."""
    out = {}
    if face_px > SMALL_FACE_PX * 1.4:
        f = SMALL_FACE_PX / face_px
        h, w = image.shape[:2]
        out["shrunk"] = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    sigma = BLUR_SIGMA_CHIP * face_px / 190.0
    out["blurred"] = cv2.GaussianBlur(image, (0, 0), sigmaX=max(sigma, 0.8))
    return out


def collect_faces(predictor: Predictor, records: Sequence[FaceRecord], progress: bool = True) -> list[dict]:
    """One row per (photo, variant) whose main face got an estimate: true age, estimate, raw spread, reasons.

    The predictor's own calibration is set aside while collecting, so ``std`` is the network's spread.
    """
    saved = predictor.config
    predictor.config = {k: v for k, v in (saved or {}).items() if k != "calibration"}
    rows: list[dict] = []
    try:
        for rec in tqdm([r for r in records if r.labelled], desc="photos", unit="photo", disable=not progress):
            try:
                image = load_image(rec.path)
            except ImageError as e:
                log.info("skipped %s: %s", rec.path, e)
                continue
            main = _main(predictor, image)
            if main is None:
                continue
            rows.append(_row(rec, "original", main))
            face_px = min(main.box[2] - main.box[0], main.box[3] - main.box[1])
            for variant, img in _variants(image, face_px).items():
                face = _main(predictor, img)
                if face is not None:
                    rows.append(_row(rec, variant, face))
    finally:
        predictor.config = saved
    return rows


def _main(predictor: Predictor, image: np.ndarray) -> Any:
    """The main estimated face of a photo (the same rule as ``data align``), or None."""
    faces = predictor.predict(image)
    face = main_face(faces, image.shape) if faces else None
    return face if face is not None and face.age is not None else None


def _row(rec: FaceRecord, variant: str, face: Any) -> dict:
    return {
        "digest": rec.digest or str(rec.path),
        "variant": variant,
        "age_true": float(rec.age),  # type: ignore[arg-type]
        "age": float(face.age),
        "std": float(face.age_std) if face.age_std is not None else math.nan,
        "reasons": list(face.reasons),
    }


def _groups(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows per factor: ``ok`` (no flag), ``flagged`` (any flag) and each reason."""
    groups: dict[str, list[dict]] = {"ok": [r for r in rows if not r["reasons"]]}
    groups["flagged"] = [r for r in rows if r["reasons"]]
    for reason in sorted({x for r in rows for x in r["reasons"]}):
        groups[reason] = [r for r in rows if reason in r["reasons"]]
    return groups


def fit_scales(rows: list[dict], level: float = INTERVAL_LEVEL) -> dict[str, float]:
    """Factor per group: ``ok`` from unflagged faces; a reason from its own faces when it has enough, else the
    pooled flagged factor. Flag factors never go below the ok factor (a flag never narrows an interval)."""
    groups = _groups(rows)

    def fit(sel: list[dict]) -> float:
        return fit_interval_scale([abs(r["age"] - r["age_true"]) for r in sel], [r["std"] for r in sel], level)

    ok = fit(groups["ok"]) if groups["ok"] else 1.0
    pooled = max(ok, fit(groups["flagged"])) if groups["flagged"] else ok
    scales = {"ok": round(ok, 3)}
    for name, sel in groups.items():
        if name in ("ok", "flagged"):
            continue
        scales[name] = round(max(ok, fit(sel)) if len(sel) >= MIN_FACES_PER_REASON else pooled, 3)
    scales["flagged"] = round(pooled, 3)
    return scales


def _scale_for(scales: dict[str, float], reasons: list[str]) -> float:
    if not reasons:
        return scales.get("ok", 1.0)
    return max(scales.get(r, scales.get("flagged", scales.get("ok", 1.0))) for r in reasons)


def coverage_table(rows: list[dict], scales: dict[str, float] | None, level: float = INTERVAL_LEVEL) -> dict:
    """Coverage and count per group with ``scales`` applied (None: the raw spread)."""
    out = {}
    for name, sel in _groups(rows).items():
        err = [abs(r["age"] - r["age_true"]) for r in sel]
        sd = [r["std"] * (_scale_for(scales, r["reasons"]) if scales else 1.0) for r in sel]
        out[name] = {"n": len(sel), "coverage": interval_coverage(err, sd, 1.0, level) if sel else None}
    return out


def calibrate(rows: list[dict], level: float = INTERVAL_LEVEL) -> dict[str, Any]:
    """Fit on all rows; report raw coverage and two-fold cross-validated coverage (halves by photo hash)."""
    scales = fit_scales(rows, level)
    halves = [[r for r in rows if int(r["digest"][:8], 16) % 2 == k] for k in (0, 1)]
    held_out: list[dict] = []
    for k in (0, 1):
        if halves[k] and halves[1 - k]:
            fitted = fit_scales(halves[k], level)
            held_out += [
                {**r, "std": r["std"] * _scale_for(fitted, r["reasons"]), "reasons": r["reasons"]}
                for r in halves[1 - k]
            ]
    return {
        "level": level,
        "z": central_z(level),
        "interval_scale": scales,
        "faces": len(rows),
        "coverage_raw": coverage_table(rows, None, level),
        "coverage_cross_validated": coverage_table(held_out, None, level) if held_out else {},
    }


def write_calibration(model_dir: str | Path, result: dict[str, Any], fitted_on: str) -> Path:
    """Store the factors in ``config.json`` (atomically), where prediction reads them."""
    return _store(
        model_dir,
        {
            "interval_scale": deepcopy(result["interval_scale"]),
            "level": result["level"],
            "fitted_on": fitted_on,
            "coverage_cross_validated": {
                k: v["coverage"] for k, v in result["coverage_cross_validated"].items() if v["coverage"] is not None
            },
        },
    )


def _store(model_dir: str | Path, calibration: dict[str, Any]) -> Path:
    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text())
    config["calibration"] = calibration
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    tmp.replace(path)
    return path


def copy_calibration(model_dir: str | Path, source_dir: str | Path) -> Path:
    """Store ``source_dir``'s factors in ``model_dir``'s config.json (atomically).

    For a final refit on train + val: its validation photos are no longer held out, so factors fitted on them
    would be too narrow; the same recipe trained without them was calibrated on them and lends its factors.
    """
    source = read_config(source_dir).get("calibration")  # a clear error for a folder that is not a model
    if not source:
        raise ConfigError(f"{source_dir} has no calibration to copy (run agegender calibrate on it first)")
    fitted_on = f"{source.get('fitted_on', '?')}, for the model in {source_dir} (copied)"
    return _store(model_dir, {**deepcopy(source), "fitted_on": fitted_on})


def format_calibration(result: dict[str, Any]) -> str:
    lines = [f"{result['faces']} faces; 80% interval coverage (raw -> cross-validated with the fitted factors):"]
    cv = result["coverage_cross_validated"]
    for name, raw in result["coverage_raw"].items():
        after = cv.get(name, {}).get("coverage")
        factor = result["interval_scale"].get(name)
        lines.append(
            f"  {name:>10}: n={raw['n']:>5}  {raw['coverage']:.1%} -> "
            f"{'-' if after is None else f'{after:.1%}'}  (factor {factor})"
        )
    return "\n".join(lines)
