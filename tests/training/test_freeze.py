"""Partial fine-tuning: which parameters train, and frozen BatchNorm layers keeping their statistics."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from agegender.models import build_model
from agegender.training.config import load_recipe
from agegender.training.datamodule import AgeGenderDataModule
from agegender.training.freeze import apply_trainable
from agegender.training.module import AgeGenderModule

TRAINABLE = ["layer3", "layer4", "head"]
TRAINABLE_PREFIXES = ("backbone.layer3.", "backbone.layer4.", "neck.", "age_head.", "gender_head.")


def _resnet18(**extra) -> nn.Module:
    # attention=True gives the neck parameters too, so that "head" must cover neck + both heads
    return build_model({"backbone": "resnet18", "age_head": "regression", "hidden": 8, "attention": True, **extra})


def _module(trainable: list[str]) -> AgeGenderModule:
    model = {
        "backbone": "resnet18",
        "age_head": "regression",
        "gender_head": "bce",
        "hidden": 8,
        "attention": True,
        "input_size": 32,
    }
    train = {"trainable": trainable, "channels_last": False}
    return AgeGenderModule(model, {}, {"scheduler": "none"}, train)


def _bn_layers(net: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    return {n: m for n, m in net.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def _is_trainable_name(name: str) -> bool:
    return name.startswith(TRAINABLE_PREFIXES)


def test_apply_trainable_layer3_layer4_head():
    net = _resnet18()
    n = apply_trainable(net, TRAINABLE)
    names = dict(net.named_parameters())
    trainable = {k for k, p in names.items() if p.requires_grad}
    assert trainable == {k for k in names if _is_trainable_name(k)}
    assert any(k.startswith("neck.") for k in trainable)
    assert any(k.startswith("backbone.layer3.") for k in trainable)
    assert not any(
        k.startswith(("backbone.layer1.", "backbone.layer2.", "backbone.conv1.", "backbone.bn1.")) for k in trainable
    )
    assert n == sum(names[k].numel() for k in trainable)
    # "all" undoes it
    assert apply_trainable(net, ["all"]) == sum(p.numel() for p in net.parameters())
    assert all(p.requires_grad for p in net.parameters())


def test_apply_trainable_accepts_full_prefixes_and_head_only():
    net = _resnet18()
    apply_trainable(net, ["backbone.layer4"])
    assert {k.split(".")[1] for k, p in net.named_parameters() if p.requires_grad} == {"layer4"}
    apply_trainable(net, ["head"])
    assert {k.split(".")[0] for k, p in net.named_parameters() if p.requires_grad} == {
        "neck",
        "age_head",
        "gender_head",
    }


def test_bad_stage_name_lists_the_stages():
    net = _resnet18()
    with pytest.raises(ValueError) as e:
        apply_trainable(net, ["layer3", "layer9"])
    msg = str(e.value)
    assert "'layer9'" in msg and "'head'" in msg
    for stage in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4"):
        assert stage in msg


def test_bad_stage_name_in_module_and_recipe_fails_early():
    with pytest.raises(ValueError, match="layer9"):
        _module(["layer9"])


def test_frozen_batchnorm_stays_in_eval_mode_after_train():
    module = _module(TRAINABLE)
    module.eval()
    module.train()
    bns = _bn_layers(module.net)
    assert bns
    for name, bn in bns.items():
        assert bn.training == _is_trainable_name(name + "."), name
    assert module.training and module.net.training and module.net.age_head.training
    frozen = module.net.backbone.bn1
    trained = module.net.backbone.layer4[1].bn2
    before_frozen, before_trained = frozen.running_mean.clone(), trained.running_mean.clone()
    module(torch.rand(4, 3, 32, 32) * 5)
    assert torch.equal(frozen.running_mean, before_frozen)
    assert not torch.equal(trained.running_mean, before_trained)
    # train(False) still puts everything in eval mode, and "all" leaves every BatchNorm training
    module.train(False)
    assert not any(bn.training for bn in bns.values())
    full = _module(["all"]).train()
    assert all(bn.training for bn in _bn_layers(full.net).values())


class _ModeProbe(L.Callback):
    def __init__(self) -> None:
        self.checked = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        for name, bn in _bn_layers(pl_module.net).items():
            assert bn.training == _is_trainable_name(name + "."), (trainer.current_epoch, name)
        self.checked += 1


@pytest.mark.slow
def test_frozen_batchnorm_stays_frozen_through_lightning_fit(utk_dir, tmp_path, overrides):
    """Lightning switches modes around validation: frozen BatchNorm layers must come back frozen."""
    recipe = load_recipe(
        "seed_resnet18", [*overrides(utk_dir, tmp_path, epochs=2), "model.pretrained=false", "model.attention=true"]
    )
    assert recipe.train.trainable == TRAINABLE
    module = AgeGenderModule(recipe.model.to_dict(), vars(recipe.loss), vars(recipe.optim), vars(recipe.train))
    frozen_before = module.net.backbone.layer1[0].bn1.running_mean.clone()
    dm = AgeGenderDataModule(recipe.data, 32, module.net.mean, module.net.std, tmp_path / "split.json", False)
    probe = _ModeProbe()
    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        callbacks=[probe],
    )
    trainer.fit(module, datamodule=dm)
    assert probe.checked == 4
    assert torch.equal(module.net.backbone.layer1[0].bn1.running_mean, frozen_before)
