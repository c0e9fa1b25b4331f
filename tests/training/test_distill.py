"""Distillation: teachers' soft targets, how they blend with labels, and a tiny distilled fit."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from agegender.data.readers import read_dataset
from agegender.data.records import DataError
from agegender.inference.engine import Preprocessor
from agegender.models.folder import load_model_folder, save_model_folder
from agegender.models.heads import gaussian_age_distribution
from agegender.models.model import ModelConfig, build_model
from agegender.training.config import DistillConfig, load_recipe
from agegender.training.datamodule import AgeGenderDataModule
from agegender.training.distill import blend_targets, teacher_targets
from agegender.training.train import fit


def _teacher(folder: Path, age_head: str = "distribution", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    cfg = ModelConfig(backbone="scratch_cnn", input_size=32, hidden=16, age_head=age_head)
    return save_model_folder(build_model(cfg).eval(), folder)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("teachers")
    return [_teacher(root / "a", seed=0), _teacher(root / "b", seed=1)]


@pytest.fixture(scope="module")
def records(utk_dir: Path) -> list:
    return read_dataset(utk_dir, progress=False).records[:10]


def _img(rec) -> np.ndarray:
    from agegender.data.images import load_image

    return load_image(rec.path)


def _manual(folder: Path, records: list, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    net = load_model_folder(folder)
    x = Preprocessor(32, net.mean, net.std)([_img(r) for r in records])
    if flip:
        x = np.ascontiguousarray(x[..., ::-1])
    with torch.no_grad():
        out = net(torch.from_numpy(x))
    return torch.softmax(out["age"], 1).numpy(), torch.sigmoid(out["gender"]).numpy()


def test_targets_average_teachers_and_mirrored_views(teachers: list[Path], records: list):
    soft = teacher_targets([str(t) for t in teachers], records, tta=True, progress=False)
    views = [_manual(t, records, flip) for t in teachers for flip in (False, True)]
    np.testing.assert_allclose(soft.age_dist, np.mean([v[0] for v in views], 0), atol=1e-5)
    np.testing.assert_allclose(soft.p_female, np.mean([v[1] for v in views], 0), atol=1e-5)
    assert soft.age_dist.shape == (10, 101) and np.allclose(soft.age_dist.sum(1), 1, atol=1e-5)
    single = teacher_targets([str(teachers[0])], records, tta=False, progress=False)
    np.testing.assert_allclose(single.p_female, _manual(teachers[0], records, False)[1], atol=1e-5)


def test_regression_teacher_gives_a_gaussian_around_its_estimate(tmp_path: Path, records: list):
    folder = _teacher(tmp_path / "reg", age_head="regression")
    soft = teacher_targets([str(folder)], records, sigma=3.0, tta=False, progress=False)
    net = load_model_folder(folder)
    x = Preprocessor(32, net.mean, net.std)([_img(r) for r in records])
    with torch.no_grad():
        age, _, _ = net.predict(torch.from_numpy(x))
    np.testing.assert_allclose(soft.age_dist, gaussian_age_distribution(age, 101, 3.0).numpy(), atol=1e-5)


def test_teachers_must_exist_and_match_the_bins(tmp_path: Path, records: list):
    with pytest.raises(DataError, match="at least one teacher"):
        teacher_targets([], records, progress=False)
    torch.manual_seed(0)
    odd = save_model_folder(
        build_model(ModelConfig(backbone="scratch_cnn", input_size=32, hidden=16, num_bins=51)), tmp_path / "odd"
    )
    with pytest.raises(DataError, match="51 age bins"):
        teacher_targets([str(odd)], records, num_bins=101, progress=False)


def test_blend_targets_interpolates_between_labels_and_teacher():
    age = torch.tensor([20.0, 60.0])
    label = gaussian_age_distribution(age)
    teacher = gaussian_age_distribution(torch.tensor([30.0, 50.0]))
    gender, pf = torch.tensor([0.0, 1.0]), torch.tensor([0.2, 0.6])
    a, d, g = blend_targets(age, label, gender, teacher, pf, 0.0)
    torch.testing.assert_close(d, label)
    torch.testing.assert_close(g, gender)
    torch.testing.assert_close(a, age)
    a, d, g = blend_targets(age, label, gender, teacher, pf, 0.5)
    torch.testing.assert_close(d, (label + teacher) / 2)
    torch.testing.assert_close(g, torch.tensor([0.1, 0.8]))
    torch.testing.assert_close(a, torch.tensor([25.0, 55.0]), atol=1e-3, rtol=0)
    a, d, g = blend_targets(age, None, gender, teacher, pf, 1.0)  # a regression student
    assert d is None
    torch.testing.assert_close(a, torch.tensor([30.0, 50.0]), atol=1e-3, rtol=0)


def test_datamodule_appends_teacher_targets_to_training_items(utk_dir: Path, teachers: list[Path], overrides, tmp_path):
    recipe = load_recipe("scratch_cnn", overrides(utk_dir, tmp_path / "run"))
    distill = DistillConfig(teachers=[str(teachers[0])], tta=False)
    dm = AgeGenderDataModule(recipe.data, 32, (0.5,) * 3, (0.5,) * 3, tmp_path / "split.json", False, distill)
    dm.setup()
    train = dm.datasets["train"]
    item = train[3]
    assert len(item) == 5
    expected = teacher_targets([str(teachers[0])], train.records, tta=False, progress=False)
    np.testing.assert_allclose(item[3], expected.age_dist[3], atol=1e-5)
    assert item[4] == pytest.approx(float(expected.p_female[3]), abs=1e-5)
    assert len(dm.datasets["val"][0]) == 3  # validation keeps the plain labels


def test_distilled_fit_runs_end_to_end(utk_dir: Path, teachers: list[Path], overrides, tmp_path: Path):
    out = tmp_path / "student"
    extra = [f"distill.teachers=[{teachers[0]},{teachers[1]}]", "distill.alpha=0.7"]
    recipe = load_recipe("scratch_cnn", overrides(utk_dir, out) + extra)
    assert recipe.distill.alpha == 0.7 and len(recipe.distill.teachers) == 2
    with contextlib.redirect_stdout(io.StringIO()):
        summary = fit(recipe)
    assert summary["epochs_completed"] == 1 and (out / "model" / "model.safetensors").is_file()
    saved = (out / "recipe.yaml").read_text()
    assert "alpha: 0.7" in saved and str(teachers[0]) in saved
    from agegender.training.package import package_run

    with contextlib.redirect_stdout(io.StringIO()):
        package_run(out, utk_dir, tmp_path / "packaged")
    card = (tmp_path / "packaged" / "MODEL_CARD.md").read_text()
    assert "Distilled" in card and f"`{teachers[1]}`" in card and "weight 0.7 on the teachers" in card
