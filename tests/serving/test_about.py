"""The demo page's model facts come from the model folder: accuracy, licence and intended use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from agegender.models.folder import DEFAULT_MODEL_DIR
from agegender.serving.about import card_sections, model_facts


def test_shipped_model_facts_quote_its_metrics_and_card():
    text = model_facts(DEFAULT_MODEL_DIR)
    metrics = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())["overall"]
    assert f"ages are off by {metrics['mae']:.1f} years on average" in text
    assert f"gender is right for {metrics['gender_acc']:.1%} of faces" in text
    assert f"{metrics['n']} faces of the test split" in text and "utkface" in text
    (licence,) = [part for part in text.split("\n\n") if part.startswith("**Licence:** ")]
    assert "non-commercial" in licence  # the card's bold restriction, whatever its wording
    assert "**Intended use:** Research, demos and prototypes" in text and "Not for decisions about individuals" in text


def test_a_folder_without_card_or_metrics_says_so(tmp_path: Path):
    shutil.copyfile(DEFAULT_MODEL_DIR / "config.json", tmp_path / "config.json")
    text = model_facts(tmp_path)
    assert "not recorded for this model (its folder has no metrics.json)" in text
    assert "not stated (the model folder has no MODEL_CARD.md)" in text
    assert model_facts(None) == ""


def test_card_sections_split_on_second_level_headings():
    card = "# Card\nintro\n## A\none\ntwo\n## B\n\nthree\n"
    assert card_sections(card) == {"A": "one\ntwo", "B": "three"}


def test_accuracy_line_names_every_dataset_of_a_multi_dataset_evaluation():
    from agegender.serving.about import accuracy_line

    metrics = {"data": ["../shared/data/utkface", "data/aligned/appa_real_train"], "split": "test"}
    line = accuracy_line({**metrics, "overall": {"n": 2484, "mae": 4.5, "rmse": 6.7, "gender_acc": 0.94}})
    assert "2484 faces of the test splits of utkface and appa_real_train" in line and "[" not in line


def test_shipped_model_facts_quote_its_figures_on_whole_photos():
    stored = json.loads((DEFAULT_MODEL_DIR / "metrics_photos.json").read_text())
    (test,) = [e for e in stored.values() if "test split" in e["data"]]
    text = model_facts(DEFAULT_MODEL_DIR)
    assert f"**On whole photos** ({test['photos']} photos of the test split of appa_real_train" in text
    assert f"{test['estimated']} got an estimate, ages off by {test['overall']['mae']:.1f} years" in text
    assert f"gender right for {test['overall']['gender_acc']:.1%}" in text


def test_photos_line_needs_figures():
    from agegender.serving.about import photos_line

    assert photos_line({}) is None
    assert photos_line({"x": {"overall": {"n": 0}}}) is None
