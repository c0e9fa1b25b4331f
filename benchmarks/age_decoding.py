"""How the age is read off the 101-bin distribution: mean, median, mode, or a sharpened mean.

The DLDL head gives a distribution over ages; its plain mean (T = 1) was the answer until the shipped model
switched to a sharpened mean (T = 0.25, `agegender package --age-temperature`). For a teenager whose
distribution has a long tail into the twenties, the mean sits above the median and the mode, so the choice
of read-out moves the per-band bias that issue #17 targets. Validation split only.

    python benchmarks/age_decoding.py agegender/models/default \
        --data ../shared/data/utkface --data data/aligned/appa_real_train \
        --output benchmarks/results/age_decoding_val.json

Writes JSON and a markdown table (overall and per source: MAE, RMSE, and mean signed error per age band).

``--prior-adjust TAU ...`` adds the model's own read-out with its logits adjusted for the training label prior
(logit adjustment: logits - TAU * log p_train(age)), which takes away the pull of the common ages. The prior is
the train split's ages as the model's recipe samples them (its sources' weights and ``balance_age``), smoothed
with the label sigma (2 years).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from agegender.data.dataset import decode_all
from agegender.data.names import dataset_name, unique_names
from agegender.data.readers import read_dataset
from agegender.data.splits import split_sources
from agegender.evaluation.evaluate import default_split_file
from agegender.evaluation.metrics import compute_metrics, compute_slices
from agegender.evaluation.photos import SUMMARY_BANDS as BANDS
from agegender.inference.engine import load_net
from agegender.inference.preprocess import Preprocessor
from agegender.training.datamodule import sampling_weights

TEMPERATURES = (0.8, 0.6, 0.4, 0.25, 0.1)
WINDOWS = (3, 6)


def run_net(net, crops: list[np.ndarray], batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Raw age-head logits (N, bins) and the predicted gender (N,) for aligned crops."""
    pre = Preprocessor(net.input_size, net.mean, net.std)
    logits, gender = [], []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            out = net(torch.from_numpy(pre(crops[start : start + batch_size])))
            logits.append(out["age"].float().numpy())
            gender.append((net.gender_head.decode(out["gender"]) >= 0.5).int().numpy())
    return np.concatenate(logits), np.concatenate(gender)


def read_outs(
    logits: np.ndarray, prior: np.ndarray | None = None, taus: tuple[float, ...] = (), temperature: float = 1.0
) -> dict[str, np.ndarray]:
    """Every read-out of the distribution, keyed by name (the prior-adjusted ones at the model's ``temperature``)."""
    ages = np.arange(logits.shape[1], dtype=np.float64)
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(1, keepdims=True)
    cdf = np.cumsum(p, 1)
    idx = (cdf < 0.5).sum(1)
    lo = np.where(idx > 0, cdf[np.arange(len(p)), np.maximum(idx - 1, 0)], 0.0)
    hi = cdf[np.arange(len(p)), idx]
    median = idx - 0.5 + (0.5 - lo) / np.maximum(hi - lo, 1e-12)  # linear within the bin [idx-0.5, idx+0.5]
    out = {"mean (T = 1)": p @ ages, "median": median, "mode": p.argmax(1).astype(float)}
    for t in TEMPERATURES:
        q = np.exp(z / t)
        q /= q.sum(1, keepdims=True)
        out[f"mean, temperature {t}"] = q @ ages
    mode = p.argmax(1)
    for w in WINDOWS:
        near = np.abs(ages[None, :] - mode[:, None]) <= w
        q = p * near
        out[f"mean within {w} years of the mode"] = (q @ ages) / q.sum(1)
    for tau in taus:
        a = (z - tau * np.log(prior)[None, :]) / temperature
        q = np.exp(a - a.max(1, keepdims=True))
        q /= q.sum(1, keepdims=True)
        out[f"mean, temperature {temperature}, prior-adjusted {tau}"] = q @ ages
    return out


def training_prior(model: Path, parts: dict, names: list[str], bins: int) -> np.ndarray:
    """The train split's age distribution as the model's recipe drew it (the training sampler's own weights: its
    sources' shares by dataset name, age bands evened out by ``balance_age``); smoothed and floored, so ages no
    one was trained on are not boosted without bound."""
    recipe = json.loads((model / "config.json").read_text()).get("training", {}).get("recipe", {}).get("data", {})
    weights = {dataset_name(s["path"]): s.get("weight") for s in recipe.get("sources") or []}
    records = [r for n in names for r in parts[n]["train"]]
    index = np.concatenate([np.full(len(parts[n]["train"]), i) for i, n in enumerate(names)])
    drawn = sampling_weights(records, index, [weights.get(n) for n in names], float(recipe.get("balance_age") or 0.0))
    ages = np.clip(np.round([r.age for r in records]).astype(int), 0, bins - 1)
    prior = np.bincount(ages, weights=drawn, minlength=bins)
    kernel = np.exp(-0.5 * (np.arange(-8, 9) / 2.0) ** 2)
    prior = np.convolve(np.pad(prior / prior.sum(), 8, mode="edge"), kernel / kernel.sum(), mode="valid")
    prior = np.maximum(prior, 0.1 / bins)
    return prior / prior.sum()


def figures(age_true: np.ndarray, age_pred: np.ndarray, gender_true: np.ndarray, gender_pred: np.ndarray) -> dict:
    """The evaluation's metrics overall, and (mean signed error, MAE, n) per age band."""
    overall = compute_metrics(age_true, age_pred, gender_true, gender_pred)
    slices = compute_slices(age_true, age_pred, gender_true, gender_pred)["age_band"]
    bands = {b: {"n": m["n"], "bias": m["mean_error"], "mae": m["mae"]} for b, m in slices.items()}
    return {**overall, "bands": bands}


def cell(band: dict | None) -> str:
    return "-" if band is None else f"{band['bias']:+.1f} / {band['mae']:.1f}"


def markdown(result: dict, command: str) -> str:
    bands = BANDS
    lines = [f"Age read-outs on validation chips (`{command}`). Cells: mean signed error / MAE (years).", ""]
    for source, rows in result["sources"].items():
        n = next(iter(rows.values()))["n"]
        lines += [f"**{source}** ({n} faces)", "", "| read-out | MAE | RMSE | " + " | ".join(bands) + " |"]
        lines.append("|---" * (len(bands) + 3) + "|")
        for name, f in rows.items():
            cells = [cell(f["bands"].get(b)) for b in bands]
            lines.append(f"| {name} | {f['mae']:.3f} | {f['rmse']:.3f} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--data", action="append", required=True, help="a labelled dataset (repeat for several)")
    ap.add_argument("--split-file", type=Path, default=None, help="default: the model's split.json")
    ap.add_argument("--split", default="val", choices=("val", "test"))
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/age_decoding_val.json"))
    ap.add_argument("--prior-adjust", type=float, nargs="*", default=[], metavar="TAU", help="logit adjustments")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    names = unique_names([dataset_name(d) for d in args.data])
    by_source = {
        n: [r for r in read_dataset(d, progress=False).records if r.labelled]
        for n, d in zip(names, args.data, strict=True)
    }
    parts = split_sources(by_source, args.split_file or default_split_file(args.model))
    net, _ = load_net(args.model)
    net.eval()
    taus = tuple(args.prior_adjust)
    prior = training_prior(args.model, parts, names, net.age_head.out.out_features) if taus else None
    temperature = float(getattr(net.age_head, "temperature", 1.0))
    result: dict = {"model": str(args.model), "data": args.data, "split": args.split, "sources": {}}
    everything: dict[str, list] = {}
    for name in names:
        records = parts[name][args.split]
        age_true = np.array([r.age for r in records], dtype=float)
        gender_true = np.array([r.gender for r in records], dtype=int)
        logits, gender_pred = run_net(net, list(decode_all(records, net.input_size, progress=True)))
        outs = read_outs(logits, prior, taus, temperature)
        result["sources"][name] = {k: figures(age_true, v, gender_true, gender_pred) for k, v in outs.items()}
        for k, v in outs.items():
            everything.setdefault(k, []).append((age_true, v, gender_true, gender_pred))
    if len(names) > 1:
        result["sources"] = {
            "all": {k: figures(*(np.concatenate(c) for c in zip(*v, strict=True))) for k, v in everything.items()},
            **result["sources"],
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    command = "python benchmarks/age_decoding.py " + " ".join(argv)
    args.output.with_suffix(".md").write_text(markdown(result, command))
    print(markdown(result, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
