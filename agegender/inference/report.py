"""The report folder of ``agegender evaluate --report DIR``: metrics, predictions, calibration and plots.

Headline numbers hide where a model fails and whether its confidence can be trusted, so the report adds
per-slice views (age band, gender, race), the calibration of the gender probability (reliability, ECE)
and of the age uncertainty (interval coverage), next to every raw prediction for further digging.

Plots are drawn with matplotlib's object API (``Figure``), never ``pyplot``: no global backend or figure
state is touched, so this is safe inside servers, notebooks and tests alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve

from agegender.inference import calibration

COVERAGE_LEVELS: tuple[float, ...] = (0.50, 0.68, 0.80, 0.90, 0.95)
ECE_BINS = 10
DPI = 120

PLOTS = {
    "age_scatter": "age_pred_vs_true.png",
    "mae_by_band": "mae_by_age_band.png",
    "confusion": "gender_confusion.png",
    "reliability": "gender_reliability.png",
    "coverage": "age_interval_coverage.png",
    "fairness": "fairness_slices.png",
}
SLICE_TITLES = {"age_band": "Age band", "gender": "Gender", "race": "Race", "source": "Dataset"}
GENDER_LABELS = ("male", "female")
BLUE, ORANGE, GREY = "#1f77b4", "#ff7f0e", "#555555"


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


# ---------------------------------------------------------------------------------------------- plots


def _new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure with constrained layout, so labels never overlap or get cut off."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> str:
    fig.savefig(path, dpi=DPI)
    return path.name


def plot_age_scatter(preds: dict, path: Path) -> str:
    """Predicted vs true age: systematic bias shows as a tilt away from y = x (typically old ages pulled in)."""
    at, ap = np.asarray(preds["age_true"], float), np.asarray(preds["age_pred"], float)
    gt = np.asarray(preds["gender_true"], int)
    fig = _new_figure(6.2, 5.6)
    ax = fig.add_subplot()
    hi = float(max(np.max(at, initial=1.0), np.max(ap, initial=1.0))) * 1.03 + 1
    if len(at) > 3000:
        hb = ax.hexbin(at, ap, gridsize=50, extent=(0, hi, 0, hi), bins="log", mincnt=1, cmap="viridis")
        fig.colorbar(hb, ax=ax, label="faces per cell (log)")
    else:
        alpha = float(np.clip(40.0 / math.sqrt(max(len(at), 1)), 0.15, 0.8))
        for g, name, color in ((0, "male", BLUE), (1, "female", ORANGE)):
            m = gt == g
            ax.scatter(at[m], ap[m], s=10, alpha=alpha, color=color, edgecolors="none", label=f"{name} (n={m.sum()})")
    ax.plot([0, hi], [0, hi], color="black", lw=1.2, label="y = x")
    ax.fill_between([0, hi], [-5, hi - 5], [5, hi + 5], color=GREY, alpha=0.08, label="±5 years")
    ax.set(xlim=(0, hi), ylim=(0, hi), xlabel="true age (years)", ylabel="predicted age (years)", aspect="equal")
    mae = float(np.mean(np.abs(ap - at))) if len(at) else float("nan")
    ax.set_title(f"Predicted vs true age (n={len(at)}, MAE={mae:.2f})")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def _bar_labels(ax, bars, texts: Sequence[str]) -> None:
    """Value labels on bars, on a white box so that reference lines do not run through them."""
    for t in ax.bar_label(bars, labels=list(texts), padding=2, fontsize=8):
        t.set_bbox({"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 0.5})


def plot_mae_by_band(result: dict, path: Path) -> str:
    """MAE per age band with its n: errors grow with age and small bands are noisy, both must be visible."""
    bands = {k: v for k, v in result.get("slices", {}).get("age_band", {}).items() if v.get("n")}
    fig = _new_figure(7.5, 4.2)
    ax = fig.add_subplot()
    names = list(bands)
    mae = [bands[k]["mae"] for k in names]
    bars = ax.bar(names, mae, color=BLUE, alpha=0.85, label="MAE")
    _bar_labels(ax, bars, [f"{v:.1f}\nn={bands[k]['n']}" for k, v in zip(names, mae, strict=True)])
    overall = result.get("overall", {})
    if overall.get("n"):
        ax.axhline(overall["mae"], color=GREY, ls="--", lw=1, label=f"overall MAE {overall['mae']:.2f}")
    ax.set_ylim(0, max(mae, default=1.0) * 1.25 + 0.1)
    ax.set(xlabel="true age band (years)", ylabel="MAE (years)", title="Age MAE by age band")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_confusion(preds: dict, path: Path) -> str:
    """Gender confusion matrix with counts and row %: shows which gender absorbs the errors."""
    gt = np.asarray(preds["gender_true"], int)
    gp = (np.asarray(preds["p_female"], float) >= 0.5).astype(int)
    cm = np.array([[np.sum((gt == t) & (gp == p)) for p in (0, 1)] for t in (0, 1)])
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0) * 100
    fig = _new_figure(4.8, 4.2)
    ax = fig.add_subplot()
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    for t in (0, 1):
        for p in (0, 1):
            color = "white" if pct[t, p] > 60 else "black"
            ax.text(p, t, f"{cm[t, p]}\n{pct[t, p]:.1f}%", ha="center", va="center", color=color, fontsize=12)
    ax.set_xticks([0, 1], GENDER_LABELS)
    ax.set_yticks([0, 1], [f"{g}\n(n={rows[i, 0]})" for i, g in enumerate(GENDER_LABELS)])
    acc = float(np.trace(cm) / max(cm.sum(), 1))
    ax.set(xlabel="predicted gender", ylabel="true gender", title=f"Gender confusion (accuracy {acc:.1%})")
    fig.colorbar(im, ax=ax, label="row %", shrink=0.8)
    return _save(fig, path)


def plot_reliability(rel: dict, path: Path) -> str:
    """Reliability diagram: accuracy vs confidence per bin, with the bin counts underneath."""
    fig = _new_figure(5.6, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    edges = np.asarray(rel["edges"])
    width = edges[1] - edges[0]
    table = rel["table"]
    lo = np.array([r["lo"] for r in table])
    acc = np.array([r["accuracy"] for r in table])
    conf = np.array([r["confidence"] for r in table])
    counts = np.array([r["n"] for r in table])
    ylo = max(0.0, min(0.45, math.floor((float(np.min(acc, initial=1.0)) - 0.05) * 20) / 20))
    top.plot([ylo, 1], [ylo, 1], color="black", ls="--", lw=1, label="perfect calibration")
    top.bar(
        lo,
        acc - ylo,
        bottom=ylo,
        width=width,
        align="edge",
        color=BLUE,
        alpha=0.3,
        edgecolor="white",
        label="accuracy per bin",
    )
    top.plot(conf, acc, "o-", color=BLUE, ms=5, lw=1.8, label="mean confidence → accuracy")
    ece = rel.get("ece")
    ece_txt = "n/a" if ece is None else f"{ece:.3f}"
    top.set(
        ylim=(ylo, 1.01),
        ylabel="accuracy of predicted gender",
        title=f"Gender reliability ({rel['bins']} bins, ECE = {ece_txt})",
    )
    top.text(
        0.98,
        0.04,
        "above diagonal: under-confident\nbelow diagonal: over-confident",
        transform=top.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
        color=GREY,
    )
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(lo, counts, width=width, align="edge", color=GREY, alpha=0.7, edgecolor="white")
    if len(counts) and counts.max() > 30 * max(counts.min(), 1):
        bottom.set_yscale("log")  # confident bins dwarf the rest: a log scale keeps every bin visible
    bottom.set(xlim=(0.5, 1.0), xlabel="confidence of predicted gender, max(p, 1 − p)", ylabel="faces")
    bottom.grid(alpha=0.3)
    return _save(fig, path)


def plot_coverage(cov: dict, path: Path) -> str:
    """Observed vs nominal coverage of age intervals: under the diagonal = over-confident spreads."""
    fig = _new_figure(5.2, 5.0)
    ax = fig.add_subplot()
    nominal = np.array([r["nominal"] for r in cov["levels"]]) * 100
    observed = np.array([r["observed"] for r in cov["levels"]]) * 100
    lo = max(0.0, min(40.0, float(np.min(observed, initial=40.0)) - 5))
    ax.plot([lo, 100], [lo, 100], color="black", ls="--", lw=1, label="perfect calibration")
    ax.plot(nominal, observed, "o-", color=BLUE, lw=2, label="observed")
    # numbers in a box on the empty side of the diagonal: labels on the points collide when they bunch up
    rows = "\n".join(
        f"{r['nominal']:>7.0%} {r['observed']:>8.1%}  ±{r['mean_half_width']:>5.1f} y" for r in cov["levels"]
    )
    below = float(np.mean(observed - nominal)) < 0
    ax.text(
        0.03 if below else 0.97,
        0.86 if below else 0.16,
        "nominal observed half-width\n" + rows,
        transform=ax.transAxes,
        ha="left" if below else "right",
        va="top" if below else "bottom",
        multialignment="left",
        fontsize=8,
        family="monospace",
        bbox={"facecolor": "white", "edgecolor": "#cccccc", "pad": 3},
    )
    ax.text(
        0.97,
        0.03,
        "below diagonal: intervals too narrow\n(over-confident)",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
        color=GREY,
    )
    ax.set(
        xlim=(lo, 101.5),
        ylim=(lo, 101.5),
        aspect="equal",
        xlabel="nominal coverage (%)",
        ylabel="observed coverage (%)",
        title=f"Age interval calibration (normal, n={cov['n']})",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_fairness(result: dict, path: Path) -> str:
    """MAE and gender accuracy per race, gender and age band, against the overall value: gaps = unfairness."""
    slices = result.get("slices", {})
    kinds = ("race", "gender", "age_band")
    widths = [max(len(slices.get(k, {})), 2) for k in kinds]
    fig = _new_figure(13.0, 6.4)
    axes = fig.subplots(2, len(kinds), width_ratios=widths, sharey="row")
    overall = result.get("overall", {})
    rows = (("mae", "MAE (years)", BLUE), ("gender_acc", "gender accuracy", ORANGE))
    for col, kind in enumerate(kinds):
        groups = {k: v for k, v in slices.get(kind, {}).items() if v.get("n")}
        for row, (key, label, color) in enumerate(rows):
            ax = axes[row, col]
            if not groups:
                ax.text(
                    0.5,
                    0.5,
                    f"no {SLICE_TITLES[kind].lower()} labels",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color=GREY,
                )
                ax.set_xticks([])
            else:
                names = list(groups)
                vals = [groups[n][key] for n in names]
                bars = ax.bar(names, vals, color=color, alpha=0.85)
                fmt = "{:.1f}" if key == "mae" else "{:.1%}"
                texts = [
                    fmt.format(v) + (f"\nn={groups[n]['n']}" if row == 0 else "")
                    for n, v in zip(names, vals, strict=True)
                ]
                _bar_labels(ax, bars, texts)
                if overall.get("n"):
                    ax.axhline(overall[key], color=GREY, ls="--", lw=1)
                ax.tick_params(axis="x", labelrotation=30 if kind == "age_band" else 0, labelsize=8)
            ax.grid(axis="y", alpha=0.3)
            if row == 0:
                ax.set_title(f"by {SLICE_TITLES[kind].lower()}")
            else:
                ax.set_xlabel(SLICE_TITLES[kind])
            if col == 0:
                ax.set_ylabel(label)
    all_mae = [v["mae"] for k in kinds for v in slices.get(k, {}).values() if v.get("n")]
    axes[0, 0].set_ylim(0, max(all_mae, default=1.0) * 1.3 + 0.1)
    all_acc = [v["gender_acc"] for k in kinds for v in slices.get(k, {}).values() if v.get("n")]
    acc_lo = max(0.0, math.floor((min(all_acc, default=0.0) - 0.05) * 10) / 10)
    axes[1, 0].set_ylim(acc_lo, 1.0 + (1.0 - acc_lo) * 0.12)  # zoomed: a few points of accuracy matter
    axes[1, 0].yaxis.set_major_formatter(lambda v, _pos: f"{v:.0%}")
    fig.suptitle("Fairness slices: age MAE and gender accuracy per group (dashed: overall)")
    return _save(fig, path)


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
    lines += [f"![MAE by age band]({plots['mae_by_band']})", "", f"![Fairness slices]({plots['fairness']})", ""]
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
