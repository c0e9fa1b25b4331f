"""The model card is written from the folder: datasets with their terms, fine-tuning lineage, metrics, intervals."""

from __future__ import annotations

import json
from pathlib import Path

from agegender.evaluation.card import CARD_FILE, dataset_terms, init_lineage, render_card, write_card


def _folder(tmp_path: Path, recipe: dict, calibration: dict | None = None) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    model = {"backbone": "mobilefacenet", "input_size": 112, "age_head": "distribution", "gender_head": "bce"}
    cfg = {"format_version": 1, "model": model, "training": {"recipe": recipe}}
    if calibration:
        cfg["calibration"] = calibration
    (folder / "config.json").write_text(json.dumps(cfg))
    (folder / "split.json").write_text(
        json.dumps({"assignment": {"a": "train", "b": "train", "c": "val", "d": "test"}})
    )
    return folder


WILD = {
    "name": "mobilefacenet_wild",
    "model": {
        "backbone": "mobilefacenet",
        "init": "agegender/models/default",
        "init_recipe": {
            "name": "mobilefacenet_dldl",
            "description": "MobileFaceNet (face recognition), 112 px",
            "model": {"backbone": "mobilefacenet", "pretrained": True},
        },
    },
    "data": {
        "sources": [
            {"path": "../shared/data/utkface", "name": "utkface", "weight": 0.6},
            {"path": "data/aligned/appa_real_train", "name": "appa_real", "weight": 0.4},
        ],
        "balance_age": 0.5,
        "augment": {"degrade_p": 0.5},
    },
    "train": {"epochs": 6},
}


def test_card_lists_every_dataset_with_its_terms_and_the_fine_tuning_lineage(tmp_path):
    text = render_card(_folder(tmp_path, WILD))
    assert "| utkface | UTKFace" in text and "| 60% |" in text
    assert "| appa_real | APPA-REAL" in text and "| 40% |" in text
    assert "non-commercial research use only" in text
    assert "2 training / 1 validation / 1 test" in text
    # where the weights started: the init folder, and through it the face-recognition backbone (CASIA-WebFace)
    assert "fine-tuned from the model folder `agegender/models/default`" in text and "CASIA-WebFace" in text
    assert "balance_age = 0.5" in text and "50% of the training faces" in text
    assert "## Metrics" not in text and "## Age intervals" not in text  # nothing measured yet: nothing claimed


def test_card_carries_metrics_and_interval_calibration_and_keeps_its_parameter_count(tmp_path):
    cal = {
        "interval_scale": {"ok": 1.05, "small": 1.2},
        "level": 0.8,
        "fitted_on": "400 photos",
        "coverage_cross_validated": {"ok": 0.81},
    }
    folder = _folder(tmp_path, WILD, cal)
    metrics = {"n": 4, "mae": 5.0, "rmse": 6.0, "gender_acc": 0.9, "gender_f1": 0.9, "score": 0.8}
    slices = {"source": {"utkface": metrics, "appa_real": dict(metrics, mae=6.5)}}
    (folder / "metrics.json").write_text(json.dumps({"data": ["a", "b"], "overall": metrics, "slices": slices}))
    write_card(folder, params=1.29)
    first = (folder / CARD_FILE).read_text()
    assert "| source: appa_real | 4 | 6.50 |" in first
    assert "on 400 photos: ok 1.05, small 1.20" in first and "ok 81.0%" in first
    write_card(folder)  # a rewrite (as `agegender calibrate --write` does) keeps what only packaging knew
    assert (folder / CARD_FILE).read_text() == first and "1.29 M parameters" in first


def test_unknown_datasets_point_to_their_own_terms():
    assert dataset_terms("my_faces", "data/my_faces")[1] == "see the dataset's own terms"
    assert "non-commercial" in dataset_terms("x", "../shared/data/UTKFace")[1]


def test_init_lineage_names_the_pretraining_data_and_its_terms():
    assert "CASIA-WebFace" in init_lineage({"model": {"backbone": "mobilefacenet", "pretrained": True}})
    assert "ImageNet-1k" in init_lineage({"model": {"backbone": "mobilenet_v2", "pretrained": True}})
    y1 = init_lineage({"model": {"backbone": "mobilefacenet_y1", "pretrained": True}})
    assert "MS-Celeb-1M" in y1 and "InsightFace" in y1 and "non-commercial research only" in y1
    assert init_lineage({"model": {"backbone": "mobilenet_v2", "pretrained": False}}) == "random initialisation"
    assert init_lineage({}) == "unknown"
    # model.pretrained_path is honoured for every backbone: the card names the file, not ImageNet
    chosen = init_lineage({"model": {"backbone": "resnet18", "pretrained": True, "pretrained_path": "/w/faces.pth"}})
    assert "`faces.pth`" in chosen and "ImageNet" not in chosen


def test_distillation_and_refit_are_said_only_when_they_happened(tmp_path):
    plain = render_card(_folder(tmp_path, {"model": {"backbone": "mobilefacenet", "pretrained": True}}))
    assert "Distilled" not in plain and "Refit" not in plain
    recipe = {
        "model": {"backbone": "mobilefacenet", "pretrained": True},
        "distill": {"teachers": ["runs/gone/model"], "alpha": 0.3},
        "data": {"path": "../shared/data/utkface", "train_on_val": True},
    }
    (tmp_path / "b").mkdir()
    text = render_card(_folder(tmp_path / "b", recipe))
    assert "Distilled from `runs/gone/model` (weight 0.3 on the teachers)" in text
    assert "no held-out validation figure" in text


def test_known_limits_name_the_weak_spots_the_folder_measured(tmp_path):
    folder = _folder(tmp_path, WILD)
    assert "- On " not in render_card(folder) and "Gender is right for only" not in render_card(folder)
    band = {"n": 40, "mae": 3.0, "rmse": 4.0, "gender_acc": 0.95, "gender_f1": 0.95, "score": 0.9}
    slices = {"age_band": {"0-12": dict(band, gender_acc=0.74), "13-19": band, "70+": dict(band, n=5, gender_acc=0.5)}}
    (folder / "metrics.json").write_text(json.dumps({"overall": band, "slices": slices}))
    bands = {
        "0-12": {"n": 41, "mean_error": 1.9},
        "13-19": {"n": 61, "mean_error": 3.04},
        "40-49": {"n": 49, "mean_error": -2.2},
        "70+": {"n": 9, "mean_error": -6.0},  # too few people to claim anything
    }
    entry = {"data": "wild val", "photos": 100, "estimated": 99, "overall": {"n": 0}, "bands": bands}
    (folder / "metrics_photos.json").write_text(json.dumps({"wild val": entry}))
    text = render_card(folder)
    limits = text[text.index("## Known limits") : text.index("## Intended use")]
    assert "On wild val, end to end" in limits and "13-19 +3.0 (n=61), 40-49 -2.2 (n=49)." in limits
    assert "0-12 +1.9" not in limits and "70+ -6.0" not in limits
    assert "Gender is right for only 74.0% of people aged 0-12" in limits and "aged 70+" not in limits
    assert limits.index("- On wild val") < limits.index("- Ages are the datasets' labels")
