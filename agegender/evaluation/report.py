"""The report folder of ``agegender evaluate --report DIR``: metrics, predictions, calibration and plots.

Headline numbers hide where a model fails and whether its confidence can be trusted, so the report adds
per-slice views (age band, gender, race), the calibration of the gender probability (reliability, ECE)
and of the age uncertainty (interval coverage), next to every raw prediction for further digging.

The plots are in :mod:`agegender.evaluation.plots`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve

from agegender.evaluation.plots import (
    PLOTS,
    SLICE_TITLES,
    plot_age_scatter,
    plot_confusion,
    plot_coverage,
    plot_fairness,
    plot_mae_by_band,
    plot_reliability,
)
from agegender.inference import calibration

COVERAGE_LEVELS: tuple[float, ...] = (0.50, 0.68, 0.80, 0.90, 0.95)
ECE_BINS = 10


# ---------------------------------------------------------------------------------------------- calibration


def gender_reliability(p_female: Sequence[float], gender_true: Sequence[int], bins: int = ECE_BINS) -> dict:
    """Reliability table and ECE of the confidence in the *predicted* gender.

    Top-label confidence lies in [0.5, 1], so the ``bins`` equal-width bins span [0.5, 1]: all of them can
    be populated (bins over [0, 1] would leave half of them empty by construction). Binning and per-bin
    means come from ``sklearn.calibration.calibration_curve`` on the confidence mapped to [0, 1].
    """
    p = np.clip(np.asarray(p_female, float), 0.0, 1.0)
    gt = np.asarray(gender_true, int)
    edges = np.linspace(0.5, 1.0, bins + 1)
    empty = {"ece": None, "bins": bins, "n": 0, "edges": edges.tolist(), "table": []}
    if len(p) == 0:
        return empty
    pred = (p >= 0.5).astype(int)
    conf = np.where(pred == 1, p, 1.0 - p)
    correct = (pred == gt).astype(int)
    scaled = 2.0 * conf - 1.0  # [0.5, 1] -> [0, 1], so calibration_curve's uniform bins tile [0.5, 1]
    acc, mean_scaled = calibration_curve(correct, scaled, n_bins=bins, pos_label=1, strategy="uniform")
    # the same bin assignment as calibration_curve, for the counts it does not return
    ids = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], scaled)
    counts = np.bincount(ids, minlength=bins)
    filled = np.flatnonzero(counts)
    mean_conf = (mean_scaled + 1.0) / 2.0
    table = [
        {
            "lo": float(edges[b]),
            "hi": float(edges[b + 1]),
            "n": int(counts[b]),
            "confidence": float(c),
            "accuracy": float(a),
        }
        for b, c, a in zip(filled, mean_conf, acc, strict=True)
    ]
    ece = float(sum(r["n"] * abs(r["accuracy"] - r["confidence"]) for r in table) / len(p))
    brier = float(np.mean((p - gt) ** 2))
    return {
        "ece": ece,
        "brier": brier,
        "bins": bins,
        "n": int(len(p)),
        "accuracy": float(correct.mean()),
        "mean_confidence": float(conf.mean()),
        "edges": edges.tolist(),
        "table": table,
    }


def gender_ece(p_female: Sequence[float], gender_true: Sequence[int], bins: int = ECE_BINS) -> float:
    """Expected calibration error of the predicted gender's confidence: sum_b n_b/N |acc_b - conf_b|.

    0 means "a 90 % sure answer is right 90 % of the time"; NaN when there is nothing to measure.
    """
    ece = gender_reliability(p_female, gender_true, bins)["ece"]
    return float("nan") if ece is None else ece


def interval_coverage(
    age_true: Sequence[float],
    age_pred: Sequence[float],
    age_std: Sequence[float],
    levels: Sequence[float] = COVERAGE_LEVELS,
) -> dict[float, float]:
    """Observed coverage of the central normal intervals ``age_pred ± z(level) * age_std``, per level.

    A calibrated uncertainty covers the true age at the nominal rate; below it means over-confident
    (intervals too narrow). Rows without a finite std are ignored; ``{}`` when there are none
    (regression age heads predict no spread). Per level this is :func:`calibration.interval_coverage`.
    """
    err = np.abs(np.asarray(age_true, float) - np.asarray(age_pred, float))
    sd = np.asarray(age_std, float)
    if not (np.isfinite(err) & np.isfinite(sd) & (sd >= 0)).any():
        return {}
    return {float(level): calibration.interval_coverage(err, sd, 1.0, float(level)) for level in levels}


def _coverage_details(preds: dict, levels: Sequence[float] = COVERAGE_LEVELS) -> dict:
    """Coverage per level plus the interval widths, i.e. what an interval of that confidence costs in years."""
    sd = np.asarray(preds["age_std"], float)
    finite = np.isfinite(sd)
    cov = interval_coverage(preds["age_true"], preds["age_pred"], sd, levels)
    if not cov:
        return {"available": False, "note": "age_std is NaN everywhere (regression age head): no interval to check"}
    rows = []
    for level, observed in cov.items():
        z = calibration.central_z(level)
        rows.append({"nominal": level, "observed": observed, "z": z, "mean_half_width": float(z * np.mean(sd[finite]))})
    return {"available": True, "n": int(finite.sum()), "mean_std": float(np.mean(sd[finite])), "levels": rows}


# ---------------------------------------------------------------------------------------------- files


def _json_safe(obj):
    """NaN/inf become null and numpy scalars plain numbers, so metrics.json is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_predictions(preds: dict, path: Path) -> None:
    """One row per face, so any other metric or error analysis can be done without re-running the model."""
    n = len(preds["age_true"])
    race = preds.get("race")
    frame = pd.DataFrame(
        {
            "path": list(preds.get("paths") or [""] * n),
            "age_true": np.asarray(preds["age_true"], float),
            "age_pred": np.round(np.asarray(preds["age_pred"], float), 3),
            "age_std": np.round(np.asarray(preds["age_std"], float), 3),
            "gender_true": np.asarray(preds["gender_true"], int),
            "p_female": np.round(np.asarray(preds["p_female"], float), 5),
            "race": pd.array(
                [None if r is None else int(r) for r in (race if race is not None else [None] * n)], dtype="Int64"
            ),
        }
    )
    frame.to_csv(path, index=False)


def _fmt(v, kind: str = "f3") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if kind == "pct":
        return f"{v:.1%}"
    if kind == "int":
        return str(int(v))
    if kind == "f4":
        return f"{v:.4f}"
    if kind == "signed":
        return f"{v:+.2f}"
    return f"{v:.3f}"


_COLUMNS = (
    ("n", "n", "int"),
    ("mae", "MAE", "f3"),
    ("rmse", "RMSE", "f3"),
    ("mean_error", "bias", "signed"),
    ("age_score", "age score", "f4"),
    ("gender_acc", "gender acc", "pct"),
    ("gender_f1", "gender F1", "f4"),
    ("score", "score", "f4"),
)


def _slice_table(groups: dict) -> list[str]:
    head = "| group | " + " | ".join(c[1] for c in _COLUMNS) + " |"
    sep = "|---|" + "---:|" * len(_COLUMNS)
    lines = [head, sep]
    for name, m in groups.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m.get(k), f) for k, _, f in _COLUMNS) + " |")
    return lines


def _markdown(result: dict, calib: dict, plots: dict[str, str]) -> str:
    o = result.get("overall", {})
    lines = ["# Evaluation report", ""]
    meta = [
        ("model", result.get("model")),
        ("data", result.get("data")),
        ("split", result.get("split")),
        ("split file", result.get("split_file")),
        ("TTA", result.get("tta")),
    ]
    lines += [f"- **{k}**: `{v}`" for k, v in meta if v is not None]
    lines += [
        "",
        "Files: [metrics.json](metrics.json) (everything below, machine-readable), "
        "[predictions.csv](predictions.csv) (one row per face).",
        "",
        "## Overall",
        "",
    ]
    lines += ["| metric | value |", "|---|---:|"]
    names = {
        "n": "faces",
        "mae": "age MAE (years)",
        "rmse": "age RMSE (years)",
        "age_score": "age score",
        "gender_acc": "gender accuracy",
        "gender_f1": "gender macro F1",
        "score": "score (harmonic mean)",
    }
    kinds = {"n": "int", "gender_acc": "pct", "age_score": "f4", "gender_f1": "f4", "score": "f4"}
    lines += [f"| {label} | {_fmt(o.get(k), kinds.get(k, 'f3'))} |" for k, label in names.items() if k in o]
    lines += [
        "",
        "Score = harmonic mean of gender macro F1 and age score = 1 − min(RMSE, 30)/30; "
        "bias = mean(predicted − true age).",
        "",
        "## Slices",
        "",
    ]
    for kind, title in SLICE_TITLES.items():
        groups = result.get("slices", {}).get(kind)
        lines += [f"### By {title.lower()}", ""]
        lines += _slice_table(groups) if groups else [f"_No {title.lower()} labels in this data._"]
        lines.append("")
    lines += [
        f"![MAE and mean signed error by age band]({plots['mae_by_band']})",
        "",
        f"![Fairness slices]({plots['fairness']})",
        "",
    ]
    g = calib["gender"]
    lines += ["## Calibration", "", "### Gender probability", ""]
    if g.get("ece") is None:
        lines += ["_No predictions._", ""]
    else:
        lines += [
            f"- **ECE** ({g['bins']} equal-width bins of the predicted gender's confidence over [0.5, 1]): "
            f"**{g['ece']:.4f}**",
            f"- mean confidence {g['mean_confidence']:.1%} vs accuracy {g['accuracy']:.1%} "
            f"({'over' if g['mean_confidence'] > g['accuracy'] else 'under'}-confident on average)",
            f"- Brier score of p(female): {g['brier']:.4f}",
            "",
            "| confidence bin | n | mean confidence | accuracy |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r['lo']:.2f}–{r['hi']:.2f} | {r['n']} | {r['confidence']:.3f} | {r['accuracy']:.3f} |"
            for r in g["table"]
        ]
        lines.append("")
    lines += [f"![Gender reliability]({plots['reliability']})", "", "### Age interval (normal approximation)", ""]
    a = calib["age_interval"]
    if not a["available"]:
        lines += [f"_Skipped: {a['note']}._", ""]
    else:
        lines += [
            f"Interval = predicted age ± z·age_std (mean age_std {a['mean_std']:.2f} years, n={a['n']}); "
            "observed below nominal means the model is over-confident about age.",
            "",
            "| nominal | observed | z | mean half-width (years) |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['nominal']:.0%} | {r['observed']:.1%} | {r['z']:.3f} | {r['mean_half_width']:.2f} |"
            for r in a["levels"]
        ]
        lines += ["", f"![Age interval coverage]({plots['coverage']})", ""]
    lines += [
        "## Predictions",
        "",
        f"![Predicted vs true age]({plots['age_scatter']})",
        "",
        f"![Gender confusion matrix]({plots['confusion']})",
        "",
    ]
    rr = result.get("read_report") or {}
    if isinstance(rr, dict) and rr.get("problems"):
        lines += ["## Data excluded while reading", ""]
        for kind, info in sorted(rr["problems"].items()):
            count = info.get("count") if isinstance(info, dict) else info
            examples = ", ".join(f"`{e}`" for e in info.get("examples", [])[:3]) if isinstance(info, dict) else ""
            lines.append(f"- {kind}: {count}" + (f" (e.g. {examples})" if examples else ""))
        lines.append("")
    return "\n".join(lines)


def write_report(result: dict, preds: dict, out_dir: Path) -> Path:
    """Write metrics.json, predictions.csv, the plots and REPORT.md into ``out_dir``; returns REPORT.md's path.

    ``result`` is left untouched; metrics.json holds it plus a ``calibration`` section and the plot names.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    calib = {
        "gender": gender_reliability(preds["p_female"], preds["gender_true"], ECE_BINS),
        "age_interval": _coverage_details(preds),
    }
    plots: dict[str, str] = {
        "age_scatter": plot_age_scatter(preds, out_dir / PLOTS["age_scatter"]),
        "mae_by_band": plot_mae_by_band(result, out_dir / PLOTS["mae_by_band"]),
        "confusion": plot_confusion(preds, out_dir / PLOTS["confusion"]),
        "reliability": plot_reliability(calib["gender"], out_dir / PLOTS["reliability"]),
        "fairness": plot_fairness(result, out_dir / PLOTS["fairness"]),
    }
    stale = out_dir / PLOTS["coverage"]
    if calib["age_interval"]["available"]:
        plots["coverage"] = plot_coverage(calib["age_interval"], stale)
    elif stale.exists():
        stale.unlink()  # a previous run's plot would contradict this report
    write_predictions(preds, out_dir / "predictions.csv")
    metrics = {**result, "calibration": calib, "plots": plots}
    (out_dir / "metrics.json").write_text(json.dumps(_json_safe(metrics), indent=2, allow_nan=False) + "\n")
    report = out_dir / "REPORT.md"
    report.write_text(_markdown(result, calib, {**PLOTS, **plots}))
    return report
