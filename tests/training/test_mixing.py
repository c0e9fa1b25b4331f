"""MixUp / CutMix: images and every target mixed with the same weight.

Each test image is constant per channel: channel 0 holds the sample's age, channel 1 its gender. Whatever
permutation the mix picks, a correctly mixed sample then has mean(channel 0) == mixed age and
mean(channel 1) == mixed gender.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agegender.models.heads import gaussian_age_distribution
from agegender.training.mixing import mix_batch
from agegender.training.module import AgeGenderModule

B, H, W = 8, 20, 24
AGES = torch.tensor([12.0, 19.0, 23.0, 31.0, 44.0, 58.0, 67.0, 83.0])  # distinct, away from 0 and 100
GENDER = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
BINS = torch.arange(101, dtype=torch.float32)


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.zeros(B, 3, H, W)
    x[:, 0] = AGES[:, None, None]
    x[:, 1] = GENDER[:, None, None]
    x[:, 2] = torch.arange(B, dtype=torch.float32)[:, None, None]
    return x, AGES.clone(), GENDER.clone(), gaussian_age_distribution(AGES)


def _check_targets(xm, age, gender, dist) -> None:
    torch.testing.assert_close(xm[:, 0].mean((1, 2)), age)
    torch.testing.assert_close(xm[:, 1].mean((1, 2)), gender)
    assert ((gender >= 0) & (gender <= 1)).all()
    assert (dist >= 0).all()
    torch.testing.assert_close(dist.sum(1), torch.ones(B))
    torch.testing.assert_close(dist @ BINS, age, atol=1e-3, rtol=1e-5)  # the distribution follows the same mix


@pytest.mark.parametrize("seed", range(6))
def test_mixup_mixes_pixels_and_targets_with_the_same_lam(seed: int):
    x, age, gender, dist = _batch()
    xm, am, gm, dm, lam = mix_batch(x, age, gender, dist, "mixup", 0.4, np.random.default_rng(seed))
    assert 0.0 <= lam <= 1.0
    assert torch.equal(x, _batch()[0]) and torch.equal(age, AGES)  # inputs untouched
    _check_targets(xm, am, gm, dm)
    # every pixel is lam * own + (1 - lam) * partner's, the partner identified by channel 2
    partner = ((xm[:, 2, 0, 0] - lam * torch.arange(B)) / (1 - lam)).round().long() if lam < 1 else torch.arange(B)
    assert sorted(partner.tolist()) == list(range(B))  # a permutation
    torch.testing.assert_close(xm, lam * x + (1 - lam) * x[partner])
    torch.testing.assert_close(am, lam * AGES + (1 - lam) * AGES[partner])
    torch.testing.assert_close(dm, lam * dist + (1 - lam) * dist[partner])


@pytest.mark.parametrize("seed", range(10))
def test_cutmix_lam_is_the_fraction_of_pixels_kept(seed: int):
    x, age, gender, dist = _batch()
    xm, am, gm, dm, lam = mix_batch(x, age, gender, dist, "cutmix", 1.0, np.random.default_rng(seed))
    assert torch.equal(x, _batch()[0])
    _check_targets(xm, am, gm, dm)
    ids = xm[:, 2]
    pasted = ids != torch.arange(B, dtype=torch.float32)[:, None, None]
    for i in range(B):
        if pasted[i].any():
            # one rectangle, the same for all images, taken from one other image
            assert pasted[i].float().mean().item() == pytest.approx(1 - lam)
            rows, cols = pasted[i].any(1), pasted[i].any(0)
            assert int(pasted[i].sum()) == int(rows.sum()) * int(cols.sum())
            assert len(torch.unique(ids[i][pasted[i]])) == 1
    kept = 1 - pasted.float().mean((1, 2))
    moved = pasted.any(2).any(1)
    if moved.any():
        torch.testing.assert_close(kept[moved], torch.full((int(moved.sum()),), lam))


def test_mix_without_distribution_and_unknown_mode():
    x, age, gender, _ = _batch()
    xm, am, gm, dm, lam = mix_batch(x, age, gender, None, "mixup", 0.4, np.random.default_rng(0))
    assert dm is None
    torch.testing.assert_close(xm[:, 0].mean((1, 2)), am)
    with pytest.raises(ValueError, match="unknown mix mode 'mixcut'"):
        mix_batch(x, age, gender, None, "mixcut", 0.4, np.random.default_rng(0))


@pytest.mark.parametrize(("mix", "age_head"), [("both", "distribution"), ("cutmix", "regression")])
def test_training_step_with_mixing(mix: str, age_head: str):
    model = {"backbone": "scratch_cnn", "age_head": age_head, "gender_head": "bce", "hidden": 8, "input_size": 16}
    module = AgeGenderModule(model, {}, {"scheduler": "none"}, {"mix": mix, "mix_prob": 1.0})
    module.log = module.log_dict = lambda *a, **k: None  # no trainer attached
    batch = (torch.rand(4, 3, 16, 16), torch.tensor([20.0, 30.0, 40.0, 50.0]), torch.tensor([0, 1, 0, 1]))
    loss = module.training_step(batch, 0)
    assert torch.isfinite(loss) and loss.requires_grad
    loss.backward()
