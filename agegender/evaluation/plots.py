"""The report's plots, drawn with matplotlib's object API (``Figure``), never ``pyplot``: no global backend or
figure state is touched, so this is safe inside servers, notebooks and tests alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

DPI = 120
#: File name of each plot in the report folder.
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
#: Mean signed error per age band beyond this many years is drawn in orange (issue #17's target: within 2 years).
BIAS_BAND = 2.0


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
    """MAE per age band with its n (errors grow with age; small bands are noisy), and below it the mean signed error,
    which MAE hides: a band read too old or too young on average (issue #17's target: within ±2 years)."""
    bands = {k: v for k, v in result.get("slices", {}).get("age_band", {}).items() if v.get("n")}
    names = list(bands)
    signed = [bands[k].get("mean_error") for k in names]
    show_bias = bool(names) and all(v is not None for v in signed)
    fig = _new_figure(7.5, 6.6 if show_bias else 4.2)
    ax = fig.add_subplot(2, 1, 1) if show_bias else fig.add_subplot()
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
    if show_bias:
        bx = fig.add_subplot(2, 1, 2, sharex=ax)
        colors = [ORANGE if abs(v) > BIAS_BAND else BLUE for v in signed]
        bars = bx.bar(names, signed, color=colors, alpha=0.85)
        _bar_labels(bx, bars, [f"{v:+.1f}" for v in signed])
        bx.axhspan(-BIAS_BAND, BIAS_BAND, color=GREY, alpha=0.1, label=f"within ±{BIAS_BAND:g} years")
        bx.axhline(0, color="black", lw=0.8)
        lim = max(max((abs(v) for v in signed), default=1.0), BIAS_BAND) * 1.35
        bx.set_ylim(-lim, lim)
        bx.set(xlabel="true age band (years)", ylabel="mean signed error (years)")
        bx.set_title("Mean signed error by age band (> 0: read too old)")
        bx.grid(axis="y", alpha=0.3)
        bx.legend(loc="upper right", fontsize=8)
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
