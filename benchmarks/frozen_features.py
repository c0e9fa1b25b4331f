"""Are a backbone's pretrained weights loaded and useful? Frozen features of UTKFace chips, linear probes.

Each backbone (with its pretrained weights, from $AGEGENDER_WEIGHTS_DIR) turns N UTKFace chips, resized whole to
its input size and normalised with its own mean/std, into pooled features; a logistic regression (gender) and a
ridge regression (age) are fitted on a random half and scored on the other half, over several random halves.
A random-init network is the floor. Writes benchmarks/results/frozen_features.{json,md}.

    AGEGENDER_WEIGHTS_DIR=../shared/weights python benchmarks/frozen_features.py ../shared/data/utkface
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from agegender.data.images import load_image
from agegender.data.readers import read_dataset
from agegender.inference.batch import write_result
from agegender.inference.preprocess import Preprocessor
from agegender.models import create_backbone


def _features(name: str, pretrained: bool, images: list[np.ndarray], batch: int = 50) -> np.ndarray:
    torch.manual_seed(0)
    bb = create_backbone(name, pretrained=pretrained)
    net = bb.module.eval()
    pre = Preprocessor(bb.default_size, bb.mean, bb.std)
    with torch.no_grad():
        return np.concatenate(
            [net(torch.from_numpy(pre(images[i : i + batch]))).numpy() for i in range(0, len(images), batch)]
        )


def _probe(x: np.ndarray, gender: np.ndarray, age: np.ndarray, splits: int) -> dict:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    acc, mae = [], []
    for seed in range(splits):
        order = np.random.default_rng(seed).permutation(len(x))
        tr, te = order[: len(x) // 2], order[len(x) // 2 :]
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=5000)).fit(x[tr], gender[tr])
        acc.append(float((clf.predict(x[te]) == gender[te]).mean()))
        reg = make_pipeline(StandardScaler(), Ridge(alpha=100.0)).fit(x[tr], age[tr])
        mae.append(float(np.abs(reg.predict(x[te]) - age[te]).mean()))
    return {
        "gender_accuracy": float(np.mean(acc)),
        "gender_accuracy_std": float(np.std(acc)),
        "age_mae": float(np.mean(mae)),
        "age_mae_std": float(np.std(mae)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", help="a UTKFace folder")
    ap.add_argument("-n", type=int, default=600, help="chips, spread evenly over the sorted file list")
    ap.add_argument("--splits", type=int, default=5, help="random train/test halves to average over")
    ap.add_argument("--backbones", nargs="+", default=["mobilefacenet_y1", "mobilefacenet"])
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/frozen_features.json"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    records = sorted(read_dataset(args.data, progress=False).records, key=lambda r: str(r.path))
    records = [records[i] for i in np.linspace(0, len(records) - 1, args.n).round().astype(int)]
    images = [load_image(r.path) for r in records]
    gender = np.array([r.gender for r in records])
    age = np.array([r.age for r in records], dtype=np.float32)
    rows = {}
    for name in args.backbones:
        rows[f"{name} (pretrained)"] = _probe(_features(name, True, images), gender, age, args.splits)
    rows[f"{args.backbones[0]} (random init)"] = _probe(
        _features(args.backbones[0], False, images), gender, age, args.splits
    )
    command = " ".join(["python", "benchmarks/frozen_features.py", *argv])
    result = {"command": command, "chips": len(records), "splits": args.splits, "probes": rows}
    md = (
        f"`{command}`\n\nFrozen pooled features of {len(records)} UTKFace chips (whole chip resized), linear probes "
        f"fitted on a random half and scored on the other, mean ± sd over {args.splits} halves.\n\n"
        "| backbone | gender accuracy | age MAE (years) |\n|---|---|---|\n"
        + "".join(
            f"| {k} | {v['gender_accuracy']:.1%} ± {v['gender_accuracy_std']:.1%} | "
            f"{v['age_mae']:.2f} ± {v['age_mae_std']:.2f} |\n"
            for k, v in rows.items()
        )
    )
    write_result(args.output, result, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
