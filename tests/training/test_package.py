"""Model-card notes that `agegender package` derives from a run's recipe."""

from __future__ import annotations

from agegender.training.package import _distill_note, _init_note, _refit_note


def test_init_note_names_the_pretraining_data():
    assert "CASIA-WebFace" in _init_note({"model": {"backbone": "mobilefacenet", "pretrained": True}})
    assert "ImageNet-1k" in _init_note({"model": {"backbone": "mobilenet_v2", "pretrained": True}})
    y1 = _init_note({"model": {"backbone": "mobilefacenet_y1", "pretrained": True}})
    assert "MS-Celeb-1M" in y1 and "InsightFace" in y1 and "non-commercial research only" in y1
    assert _init_note({"model": {"backbone": "mobilenet_v2", "pretrained": False}}).startswith("Trained from random")
    assert _init_note({}) == ""


def test_distill_note_only_for_distilled_runs(tmp_path):
    assert _distill_note({"distill": {"teachers": []}}) == ""
    note = _distill_note({"distill": {"teachers": [str(tmp_path / "gone")], "alpha": 0.3, "tta": False}})
    assert f"`{tmp_path / 'gone'}`" in note and "weight 0.3" in note and "mirrored" not in note


def test_refit_note_only_for_runs_trained_on_val():
    assert _refit_note({"data": {"train_on_val": False}}) == ""
    assert _refit_note({}) == ""
    assert "no held-out validation figure" in _refit_note({"data": {"train_on_val": True}})


def test_init_note_names_a_chosen_weights_file():
    # model.pretrained_path is honoured for every backbone: the card names the file, not ImageNet
    note = _init_note({"model": {"backbone": "resnet18", "pretrained": True, "pretrained_path": "/w/my_faces.pth"}})
    assert "`my_faces.pth`" in note and "ImageNet" not in note
