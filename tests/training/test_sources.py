"""Several datasets in one run: per-source splits and validation figures, sampling weights, --data twice,
fine-tuning from a model folder (model.init / --init)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from agegender.cli.main import main
from agegender.data.splits import load_split
from agegender.models.folder import ModelFolderError, load_model_folder
from agegender.training.config import RecipeError, SourceConfig, load_recipe, source_name
from agegender.training.datamodule import AgeGenderDataModule, seed_worker_transforms
from agegender.training.train import _module_from, fit


@pytest.fixture(scope="module")
def wild_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second source in another layout: a CSV manifest of 40 noise images, 10 per (age band, gender)."""
    root = tmp_path_factory.mktemp("wild")
    (root / "images").mkdir()
    rng = np.random.default_rng(123)  # other bytes than the UTKFace-style images: other digests
    rows = ["path,age,gender"]
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "images" / f"w{i:03d}.jpg")
        rows.append(f"images/w{i:03d}.jpg,{(15 if (i // 2) % 2 else 35) + (i // 4) % 3},{i % 2}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_source_names_and_config_checks():
    assert source_name(SourceConfig("../shared/data/utkface")) == "utkface"
    assert source_name(SourceConfig("data/aligned/appa_real_train/labels.csv")) == "appa_real_train"
    assert source_name(SourceConfig("x/wild.csv", name="mine")) == "mine"
    r = load_recipe("scratch_cnn", ["data.sources=[a/utk, b/utk]"])
    assert [s.name for s in r.data.source_list()] == ["utk", "utk_2"]  # unique names
    with pytest.raises(RecipeError, match="either data.path"):
        load_recipe("scratch_cnn", ["data.path=a", "data.sources=[b]"]).data.source_list()


def _datamodule(recipe, split_file: Path) -> AgeGenderDataModule:
    return AgeGenderDataModule(recipe.data, 32, (0.5,) * 3, (0.5,) * 3, split_file, progress=False)


def test_each_source_is_split_on_its_own_into_one_split_file(utk_dir, wild_manifest, tmp_path, overrides):
    recipe = load_recipe(
        "scratch_cnn",
        [*overrides(utk_dir, tmp_path), "data.path=null", f"data.sources=[{utk_dir}, {wild_manifest}]"],
    )
    dm = _datamodule(recipe, tmp_path / "split.json")
    dm.setup()
    assert dm.source_names == ["images", wild_manifest.name]
    for split, n in (("train", 32), ("val", 4), ("test", 4)):
        counts = np.bincount(dm.source_index[split], minlength=2)
        assert counts.tolist() == [n, n]  # 80/10/10 within each source, stratified
    assignment, _ = load_split(tmp_path / "split.json")
    assert len(assignment) == 80
    # Validation items carry their source number (for per-source figures); training items do not.
    assert len(dm.datasets["val"][0]) == 4 and len(dm.datasets["train"][0]) == 3


def test_a_new_source_is_added_to_an_existing_split_without_moving_the_old_one(
    utk_dir, wild_manifest, tmp_path, overrides
):
    base = load_recipe("scratch_cnn", [*overrides(utk_dir, tmp_path)])
    _datamodule(base, tmp_path / "first.json").setup()
    first, _ = load_split(tmp_path / "first.json")
    both = load_recipe(
        "scratch_cnn",
        [
            *overrides(utk_dir, tmp_path),
            "data.path=null",
            f"data.sources=[{utk_dir}, {wild_manifest}]",
            f"data.split_file={tmp_path / 'first.json'}",
        ],
    )
    dm = _datamodule(both, tmp_path / "run_split.json")
    dm.setup()
    merged, _ = load_split(tmp_path / "run_split.json")
    assert {k: merged[k] for k in first} == first  # the old source keeps its sides
    assert len(merged) == 80 and load_split(tmp_path / "first.json")[0] == first  # the given file is untouched
    assert np.bincount(dm.source_index["val"], minlength=2).tolist() == [4, 4]


def test_sampling_weights_give_each_source_its_share(utk_dir, wild_manifest, tmp_path, overrides):
    recipe = load_recipe(
        "scratch_cnn",
        [
            *overrides(utk_dir, tmp_path),
            "data.path=null",
            f"data.sources=[{{path: {utk_dir}, weight: 0.8}}, {{path: {wild_manifest}, weight: 0.2}}]",
        ],
    )
    dm = _datamodule(recipe, tmp_path / "split.json")
    dm.setup()
    w = dm.sample_weights()
    idx = dm.source_index["train"]
    assert w is not None and w[idx == 0].sum() == pytest.approx(0.8) and w[idx == 1].sum() == pytest.approx(0.2)
    loader = dm.train_dataloader()
    drawn = np.array([i for i in loader.sampler])  # indices into the train split
    share = (idx[drawn] == 0).mean()
    assert len(drawn) == len(idx) and share > 0.6  # 64 draws at p=0.8: well above the natural 0.5


def test_workers_draw_different_augmentations():
    from torch.utils.data import DataLoader

    from agegender.data.transforms import AugmentConfig, build_train_transform

    class Flat(torch.utils.data.Dataset):
        transform = build_train_transform(32, aug=AugmentConfig(degrade_p=1.0))

        def __len__(self) -> int:
            return 6

        def __getitem__(self, i: int):
            return self.transform(image=np.full((32, 32, 3), 100, np.uint8))["image"]

    xs = list(DataLoader(Flat(), batch_size=1, num_workers=2, worker_init_fn=seed_worker_transforms))
    # worker 0 serves items 0, 2, 4 and worker 1 items 1, 3, 5: the same draws would give equal pairs
    assert not any(torch.equal(xs[i], xs[i + 1]) for i in (0, 2, 4))


def test_two_sources_train_with_per_source_validation_figures(utk_dir, wild_manifest, tmp_path, overrides, capsys):
    out = tmp_path / "run"
    args = ["train", "scratch_cnn", "--data", str(utk_dir), "--data", str(wild_manifest), *overrides(utk_dir, out)]
    args = [a for a in args if not a.startswith("data.path=")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert " | images acc " in printed and f" | {wild_manifest.name} acc " in printed
    metrics = list(csv.DictReader((out / "logs" / "metrics.csv").open()))
    keys = set().union(*(m.keys() for m in metrics))
    for name in ("images", wild_manifest.name):
        assert {f"val/{name}/{m}" for m in ("mae", "rmse", "acc", "f1", "score")} <= keys
    recorded = json.loads((out / "summary.json").read_text())
    assert recorded["epochs_completed"] == 1
    assert (out / "split.json").is_file()


def test_init_starts_from_the_model_folder_weights(utk_dir, tmp_path, overrides):
    first = tmp_path / "first"
    with contextlib.redirect_stdout(io.StringIO()):
        fit(load_recipe("scratch_cnn", overrides(utk_dir, first)))
    folder = first / "model"
    recipe = load_recipe("scratch_cnn", [*overrides(utk_dir, tmp_path / "second"), f"model.init={folder}"])
    module = _module_from(recipe)
    want = load_model_folder(folder).state_dict()
    got = module.net.state_dict()
    assert all(torch.equal(got[k].contiguous(), want[k].contiguous()) for k in want)
    # A different architecture is refused with the difference named.
    bad = load_recipe("scratch_cnn", [*overrides(utk_dir, tmp_path / "x"), f"model.init={folder}", "model.hidden=8"])
    with pytest.raises(ModelFolderError, match="hidden"):
        _module_from(bad)
    with pytest.raises(ModelFolderError, match="neither a model folder"):
        _module_from(load_recipe("scratch_cnn", [*overrides(utk_dir, tmp_path / "y"), "model.init=/nonexistent"]))


def test_cli_init_fine_tunes_and_records_it(utk_dir, tmp_path, overrides):
    first = tmp_path / "first"
    with contextlib.redirect_stdout(io.StringIO()):
        fit(load_recipe("scratch_cnn", overrides(utk_dir, first)))
    out = tmp_path / "ft"
    assert main(["train", "scratch_cnn", "--init", str(first / "model"), *overrides(utk_dir, out)]) == 0
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["model"]["init"] == str(first / "model")


def test_a_missing_teacher_fails_before_any_work(utk_dir, tmp_path, overrides, capsys):
    out = tmp_path / "run"
    args = ["train", "scratch_cnn", *overrides(utk_dir, out), "distill.teachers=[/nonexistent/model]"]
    assert main(args) == 2
    assert "distill.teachers: /nonexistent/model is neither a model folder" in capsys.readouterr().err
    assert not (out / "split.json").exists()


def test_balance_age_evens_out_bands_and_keeps_source_shares(utk_dir, wild_manifest, tmp_path, overrides):
    from agegender.data.splits import age_band

    sources = f"data.sources=[{{path: {utk_dir}, weight: 0.8}}, {{path: {wild_manifest}, weight: 0.2}}]"
    recipe = load_recipe(
        "scratch_cnn", [*overrides(utk_dir, tmp_path), "data.path=null", sources, "data.balance_age=1.0"]
    )
    dm = _datamodule(recipe, tmp_path / "split.json")
    dm.setup()
    w = dm.sample_weights()
    idx = dm.source_index["train"]
    assert w is not None and w[idx == 0].sum() == pytest.approx(0.8) and w[idx == 1].sum() == pytest.approx(0.2)
    bands = np.array([age_band(r.age) for r in dm.splits["train"]])
    for src in (0, 1):
        per_band = {b: w[(idx == src) & (bands == b)].sum() for b in set(bands[idx == src])}
        assert len(per_band) > 1
        assert max(per_band.values()) == pytest.approx(min(per_band.values()))  # b = 1: every band equally often


def test_balance_age_alone_makes_weights_and_negative_is_refused(utk_dir, tmp_path, overrides):
    from agegender.data.records import DataError
    from agegender.data.splits import age_band

    recipe = load_recipe("scratch_cnn", [*overrides(utk_dir, tmp_path), "data.balance_age=0.5"])
    dm = _datamodule(recipe, tmp_path / "split.json")
    dm.setup()
    w = dm.sample_weights()
    assert w is not None and w.sum() == pytest.approx(1.0)
    bands = np.array([age_band(r.age) for r in dm.splits["train"]])
    names, counts = np.unique(bands, return_counts=True)
    totals = np.array([w[bands == b].sum() for b in names])
    assert totals == pytest.approx(np.sqrt(counts) / np.sqrt(counts).sum())  # b = 0.5: a band's share ~ sqrt(size)
    dm.cfg.balance_age = -1.0
    with pytest.raises(DataError, match="balance_age"):
        dm.sample_weights()
