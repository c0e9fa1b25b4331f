"""Recipes: built-ins load and validate, overrides, typos and wrong types give RecipeError with suggestions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agegender.cli.main import main
from agegender.models import build_model, list_backbones
from agegender.models.losses import AgeGenderLoss
from agegender.training.config import RECIPES_DIR, Recipe, RecipeError, list_recipes, load_recipe, parse_overrides
from agegender.training.freeze import apply_trainable
from agegender.training.loggers import LOGGERS

BUILTINS = {
    "scratch_cnn",
    "seed_resnet18",
    "mobilenet_v2_dldl",
    "efficientnet_lite0_dldl",
    "mobilefacenet_dldl",
    "efficientnet_b4_dldl",
}


def test_builtin_recipes_are_listed():
    assert set(list_recipes()) >= BUILTINS
    assert set(list_recipes()) == {p.stem for p in RECIPES_DIR.glob("*.yaml")}


@pytest.mark.parametrize("name", sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
def test_builtin_recipe_loads_and_validates(name: str):
    r = load_recipe(name)
    assert isinstance(r, Recipe) and r.name == name and r.description
    assert r.model.backbone in list_backbones()
    assert r.model.age_head in ("distribution", "regression") and r.model.gender_head in ("bce", "ce")
    assert r.optim.scheduler in ("cosine", "plateau", "none")
    assert set(r.train.loggers) <= set(LOGGERS)
    assert r.train.mix in ("none", "mixup", "cutmix", "both")
    assert r.train.epochs > 0 and r.data.batch_size > 0 and r.optim.lr > 0
    assert abs(sum(r.data.fractions) - 1) < 1e-6
    lc = r.loss
    AgeGenderLoss(r.model.age_head, r.model.gender_head, lc.age_loss, lc.sigma, r.model.num_bins, lc.weighting)
    # the network and the trainable stages fit together (random init: nothing is downloaded)
    net = build_model(dataclasses.replace(r.model, pretrained=False, pretrained_path=None))
    assert apply_trainable(net, r.train.trainable) > 0
    assert r.output_dir == Path(f"runs/{name}")


def test_reference_recipes_match_their_description():
    seed = load_recipe("seed_resnet18")
    assert (seed.model.backbone, seed.model.age_head, seed.model.gender_head) == ("resnet18", "regression", "bce")
    assert seed.train.trainable == ["layer3", "layer4", "head"] and seed.optim.scheduler == "plateau"
    b4 = load_recipe("efficientnet_b4_dldl")
    assert (b4.model.input_size, b4.model.attention, b4.model.gender_head) == (384, True, "ce")
    assert load_recipe("scratch_cnn").model.pretrained is False


def test_overrides():
    r = load_recipe(
        "scratch_cnn",
        [
            "train.epochs=3",
            "train.trainable=[layer4, head]",
            "train.loggers=csv",  # a scalar where a list is expected becomes a one-item list
            "data.fractions=[0.7, 0.2, 0.1]",
            "data.augment.hflip=0.1",
            "model.mean=[0.5,0.5,0.5]",
            "model.pretrained_path=null",
            "optim.lr=1e-4",  # YAML 1.1 reads this as a string
            "optim.weight_decay=5E-5",
            "train.limit_train_batches=1",
            "train.limit_val_batches=0.5",
            "data.limit=",
        ],
    )
    assert r.train.epochs == 3 and isinstance(r.train.epochs, int)
    assert r.train.trainable == ["layer4", "head"] and r.train.loggers == ["csv"]
    assert r.data.fractions == [0.7, 0.2, 0.1] and all(isinstance(f, float) for f in r.data.fractions)
    assert r.data.augment.hflip == 0.1
    assert r.data.augment.rotate_limit == 15.0  # nested override keeps the other defaults
    assert r.model.mean == [0.5, 0.5, 0.5] and r.model.pretrained_path is None
    assert r.optim.lr == 1e-4 and isinstance(r.optim.lr, float) and r.optim.weight_decay == 5e-5
    # an int means "that many batches", a float a fraction: 1 must not become 1.0 (= the whole epoch)
    assert r.train.limit_train_batches == 1 and type(r.train.limit_train_batches) is int
    assert r.train.limit_val_batches == 0.5
    assert r.data.limit is None
    # untouched values come from the recipe, then from the defaults
    assert r.model.gender_head == "ce" and r.data.batch_size == 64 and r.train.seed == 42
    assert r.optim.warmup_epochs == 1.0 and isinstance(r.optim.warmup_epochs, float)


def test_overrides_without_recipe_and_parse():
    assert parse_overrides(["a.b=1", "a.c=[x, y]", "d=true"]) == {"a": {"b": 1, "c": ["x", "y"]}, "d": True}
    r = load_recipe(None, ["model.backbone=resnet18", "name=mine", "train.output_dir=out/{name}"])
    assert r.name == "mine" and r.model.backbone == "resnet18" and r.output_dir == Path("out/mine")
    with pytest.raises(RecipeError, match="key.sub=value"):
        parse_overrides(["train.epochs"])


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("train.epoch=3", "train.epochs"),
        ("trian.epochs=3", "train"),
        ("data.augment.hflp=0.1", "data.augment.hflip"),
        ("model.backbon=resnet18", "model.backbone"),
    ],
)
def test_typo_in_override_suggests_the_key(override: str, suggestion: str):
    with pytest.raises(RecipeError) as e:
        load_recipe("scratch_cnn", [override])
    msg = str(e.value)
    assert msg.startswith("unknown recipe key") and f"did you mean {suggestion}?" in msg


def test_typo_in_yaml_file_suggests_the_key(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  backbone: resnet18\n  hiden: 64\ntrain:\n  epochs: 2\n")
    with pytest.raises(RecipeError, match=r"'model\.hiden'.*did you mean model\.hidden\?"):
        load_recipe(path)
    path.write_text("modle:\n  backbone: resnet18\n")
    with pytest.raises(RecipeError, match="did you mean model"):
        load_recipe(path)
    path.write_text("model:\n  backbone: resnet18\n  hidden: 64\noptim:\n  lr: 3e-4\n")
    r = load_recipe(path, ["train.epochs=2"])
    assert r.name == "mine" and r.model.hidden == 64 and r.train.epochs == 2 and r.optim.lr == 3e-4


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("train.epochs=abc", r"train\.epochs: expected int, got 'abc'"),
        ("train.epochs=2.5", r"train\.epochs: expected int"),
        ("train.progress=maybe", r"train\.progress: expected true or false"),
        ("train.epochs=true", r"train\.epochs: expected int"),
        ("optim.lr=fast", r"optim\.lr: expected float"),
        ("optim.lr=1e-4x", r"optim\.lr: expected float"),
        ("data.fractions=[0.8, x, 0.1]", r"data\.fractions: expected float"),
        ("model=resnet18", r"model: expected a mapping"),
        ("data.augment.hflip.p=1", r"data\.augment\.hflip"),
    ],
)
def test_wrong_type_is_a_recipe_error(override: str, match: str):
    with pytest.raises(RecipeError, match=match):
        load_recipe("scratch_cnn", [override])


def test_bad_files_and_names(tmp_path: Path):
    with pytest.raises(RecipeError, match="not found.*scratch_cnn"):
        load_recipe("no_such_recipe")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
    bad.write_text("- a list\n")
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(bad)
    bad.write_text("model:\n  hidden: many\n")
    with pytest.raises(RecipeError, match=r"model\.hidden: expected int"):
        load_recipe(bad)


def test_cli_reports_recipe_errors(capsys: pytest.CaptureFixture[str]):
    assert main(["train", "scratch_cnn", "train.epoch=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "did you mean train.epochs?" in err


def test_cli_lists_recipes_and_backbones(capsys: pytest.CaptureFixture[str]):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("scratch_cnn", "seed_resnet18", "resnet18", "efficientnet_lite0", "mobilefacenet"):
        assert name in out
