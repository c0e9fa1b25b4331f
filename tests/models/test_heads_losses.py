"""Heads (distribution decoding, label distributions), losses and one optimisation step."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from agegender.models import build_model
from agegender.models.heads import AGE_SCALE, AgeDistributionHead, AgeRegressionHead, GenderHead
from agegender.models.heads import gaussian_age_distribution as gauss
from agegender.models.losses import AgeGenderLoss

AGES = torch.arange(101, dtype=torch.float32)
NEG = -1e4  # a logit whose probability underflows to zero


def _peaks(*ages: int, bins: int = 101) -> torch.Tensor:
    logits = torch.full((1, bins), NEG)
    logits[0, list(ages)] = 0.0
    return logits


# --- distribution head --------------------------------------------------------------------------------------


def test_expectation_and_std_of_handmade_logits():
    head = AgeDistributionHead(8, 0, 0.0)
    logits = torch.cat([_peaks(30), _peaks(20, 40), _peaks(0), _peaks(100), torch.zeros(1, 101)])
    mean, std = head.decode(logits)
    torch.testing.assert_close(mean, torch.tensor([30.0, 30.0, 0.0, 100.0, 50.0]))
    uniform_std = math.sqrt((101**2 - 1) / 12)
    torch.testing.assert_close(std, torch.tensor([0.0, 10.0, 0.0, 0.0, uniform_std]), atol=1e-2, rtol=1e-4)


def test_temperature_reads_the_age_nearer_the_peak_and_keeps_the_spread():
    # A skewed distribution: a peak at 16 with a long tail into the twenties, as for a teenager.
    logits = torch.full((1, 101), NEG)
    logits[0, 16], logits[0, 17:30] = 2.0, 0.0
    plain, sharp, near_mode = (AgeDistributionHead(8, 0, 0.0, temperature=t) for t in (1.0, 0.5, 0.05))
    (m1, s1), (m2, s2), (m3, s3) = plain.decode(logits), sharp.decode(logits), near_mode.decode(logits)
    assert 16 <= m3.item() < m2.item() < m1.item()  # lower temperature: closer to the peak at 16
    assert m3.item() == pytest.approx(16.0, abs=0.01)
    torch.testing.assert_close(s2, s1)
    torch.testing.assert_close(s3, s1)
    # A symmetric distribution keeps its answer at any temperature.
    torch.testing.assert_close(sharp.decode(_peaks(20, 40))[0], torch.tensor([30.0]))


@pytest.mark.parametrize("t", [0.0, -1.0])
def test_temperature_must_be_positive(t: float):
    with pytest.raises(ValueError, match="age_temperature"):
        AgeDistributionHead(8, 0, 0.0, temperature=t)


def test_temperature_is_refused_for_a_regression_head():
    with pytest.raises(ValueError, match="distribution age head only"):
        build_model({"backbone": "scratch_cnn", "age_head": "regression", "age_temperature": 0.5})


def test_distribution_head_shapes_and_half_precision_decode():
    head = AgeDistributionHead(12, 6, 0.0, num_bins=31).eval()
    raw = head(torch.randn(4, 12))
    assert raw.shape == (4, 31)
    mean, std = head.decode(raw.half())
    assert mean.dtype == torch.float32 and ((mean >= 0) & (mean <= 30)).all() and (std >= 0).all()


def test_regression_and_gender_heads_decode():
    reg = AgeRegressionHead(8, 4, 0.0)
    assert reg(torch.randn(3, 8)).shape == (3,)
    age, std = reg.decode(torch.tensor([0.25, 0.5]))
    torch.testing.assert_close(age, torch.tensor([0.25, 0.5]) * AGE_SCALE)
    assert torch.isnan(std).all()
    bce, ce = GenderHead(8, 4, 0.0, "bce"), GenderHead(8, 4, 0.0, "ce")
    assert bce(torch.randn(3, 8)).shape == (3,) and ce(torch.randn(3, 8)).shape == (3, 2)
    torch.testing.assert_close(bce.decode(torch.tensor([0.0, 100.0])), torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(
        ce.decode(torch.tensor([[0.0, 0.0], [5.0, -5.0]])),
        torch.tensor([0.5, torch.sigmoid(torch.tensor(-10.0)).item()]),
    )
    with pytest.raises(ValueError, match="'bce' or 'ce'"):
        GenderHead(8, 4, 0.0, "softmax")


def test_gaussian_age_distribution():
    ages = torch.tensor([0.0, 30.0, 57.0, 100.0, 130.0, -5.0])
    d = gauss(ages, sigma=2.0)
    assert d.shape == (6, 101) and (d >= 0).all()
    torch.testing.assert_close(d.sum(1), torch.ones(6))
    assert d.argmax(1).tolist() == [0, 30, 57, 100, 100, 0]  # clipped to 0..100
    torch.testing.assert_close(d[4], d[3])  # age 130 is treated as 100
    torch.testing.assert_close(d[5], d[0])
    mean = d[1:3] @ AGES
    torch.testing.assert_close(mean, torch.tensor([30.0, 57.0]))  # symmetric away from the ends
    std = ((d[1] @ AGES**2) - mean[0] ** 2).sqrt()
    assert abs(std.item() - 2.0) < 0.05
    wide = gauss(torch.tensor([30.0]), sigma=5.0)
    assert wide.max() < d[1].max()
    half = gauss(torch.tensor([30.5]))  # a fractional age sits between its two bins
    assert half[0, 30] == pytest.approx(half[0, 31].item()) and (half @ AGES).item() == pytest.approx(30.5)


def _log(p: torch.Tensor) -> torch.Tensor:
    """Logits reproducing ``p`` (far tails of a Gaussian underflow to 0, whose log would be -inf)."""
    return p.clamp_min(1e-30).log()


def test_kl_loss_zero_at_target_and_larger_elsewhere():
    loss = AgeGenderLoss("distribution", "bce", sigma=2.0)
    age = torch.tensor([25.0, 60.0])
    target = gauss(age)
    exact = loss.age_term(_log(target), age, None)
    assert abs(exact.item()) < 1e-5
    off = loss.age_term(_log(gauss(age + 5)), age, None)
    far = loss.age_term(_log(gauss(age + 20)), age, None)
    uniform = loss.age_term(torch.zeros(2, 101), age, None)
    assert 0.5 < off.item() < far.item() and uniform.item() > 1.0
    # a given (e.g. mixed) target distribution takes precedence over the ages
    mixed = 0.5 * gauss(age) + 0.5 * gauss(age + 10)
    assert abs(loss.age_term(_log(mixed), age, mixed).item()) < 1e-5
    assert loss.age_term(_log(mixed), age, None).item() > 0.5


# --- losses -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [("l1", 0.05), ("mse", 0.005), ("smooth_l1", 0.0025)])
def test_regression_losses_selectable(name: str, expected: float):
    loss = AgeGenderLoss("regression", "bce", age_loss=name)
    value = loss.age_term(torch.tensor([0.3, 0.5]), torch.tensor([20.0, 50.0]), None)
    assert value.item() == pytest.approx(expected, rel=1e-4)


def test_bce_and_ce_gender_losses_agree_on_equivalent_logits():
    bce, ce = AgeGenderLoss("regression", "bce"), AgeGenderLoss("regression", "ce")
    z = torch.tensor([-2.0, 0.0, 1.5, 3.0])
    g = torch.tensor([0.0, 1.0, 0.3, 1.0])  # soft labels (MixUp) are allowed
    lb = bce.gender_term(z, g)
    lc = ce.gender_term(torch.stack([torch.zeros(4), z], dim=1), g)  # softmax([0, z])[1] == sigmoid(z)
    torch.testing.assert_close(lb, lc)
    torch.testing.assert_close(lb, F.binary_cross_entropy_with_logits(z, g))
    assert bce.gender_term(torch.tensor([10.0]), torch.tensor([1.0])) < bce.gender_term(
        torch.tensor([-10.0]), torch.tensor([1.0])
    )


def _outputs(age_head: str = "distribution", gender_head: str = "bce") -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    age = torch.randn(4, 101, generator=g) if age_head == "distribution" else torch.rand(4, generator=g)
    gender = torch.randn(4, generator=g) if gender_head == "bce" else torch.randn(4, 2, generator=g)
    return {"age": age.requires_grad_(), "gender": gender.requires_grad_()}


def test_fixed_weighting():
    age, gender = torch.tensor([20.0, 30.0, 40.0, 50.0]), torch.tensor([0.0, 1.0, 1.0, 0.0])
    out = _outputs()
    total, parts = AgeGenderLoss(age_weight=2.0, gender_weight=0.5)(out, age, gender)
    torch.testing.assert_close(total, 2.0 * parts["age_loss"] + 0.5 * parts["gender_loss"])
    assert not parts["age_loss"].requires_grad and total.requires_grad
    assert not list(AgeGenderLoss().parameters())


def test_uncertainty_weighting_learns_log_variances():
    loss = AgeGenderLoss("regression", "ce", weighting="uncertainty")
    params = dict(loss.named_parameters())
    assert list(params) == ["log_vars"] and params["log_vars"].shape == (2,)
    age, gender = torch.tensor([20.0, 30.0, 40.0, 50.0]), torch.tensor([0.0, 1.0, 1.0, 0.0])
    out = _outputs("regression", "ce")
    total, parts = loss(out, age, gender)
    torch.testing.assert_close(total, parts["age_loss"] + parts["gender_loss"])  # log-vars start at 0
    total.backward()
    grad = loss.log_vars.grad
    assert grad is not None and (grad != 0).all()
    torch.testing.assert_close(grad, 1 - torch.stack([parts["age_loss"], parts["gender_loss"]]))
    with torch.no_grad():
        loss.log_vars.fill_(1.0)
    total2, parts2 = loss(out, age, gender)
    expected = math.exp(-1) * (parts2["age_loss"] + parts2["gender_loss"]) + 2.0
    assert total2.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"age_loss": "l3"}, "age_loss must be one of.*'l1'"),
        ({"weighting": "learned"}, "weighting must be 'fixed' or 'uncertainty'"),
        ({"age_head": "ordinal"}, "age_head must be 'distribution' or 'regression'"),
        ({"gender_head": "softmax"}, "gender_head must be 'bce' or 'ce'"),
    ],
)
def test_unknown_loss_names_raise(kwargs: dict, match: str):
    with pytest.raises(ValueError, match=match):
        AgeGenderLoss(**kwargs)


# --- optimisation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_head", "gender_head", "weighting"),
    [
        ("distribution", "ce", "fixed"),
        ("regression", "bce", "uncertainty"),
    ],
)
def test_optimisation_steps_lower_the_loss(age_head: str, gender_head: str, weighting: str):
    torch.manual_seed(0)
    net = build_model({"backbone": "scratch_cnn", "age_head": age_head, "gender_head": gender_head, "hidden": 16})
    net.train()
    criterion = AgeGenderLoss(age_head, gender_head, weighting=weighting)
    x = torch.rand(8, 3, 16, 16)
    age = torch.tensor([3.0, 12.0, 25.0, 33.0, 47.0, 58.0, 71.0, 90.0])
    gender = torch.tensor([0.0, 1.0] * 4)
    opt = torch.optim.AdamW([*net.parameters(), *criterion.parameters()], lr=1e-3)

    def loss_now() -> torch.Tensor:
        torch.manual_seed(1)  # the same dropout masks every time: a fixed objective
        return criterion(net(x), age, gender)[0]

    losses = []
    for step in range(5):
        opt.zero_grad()
        loss = loss_now()
        loss.backward()
        if step == 0:
            assert all(p.grad is not None for p in net.parameters()), "some parameter gets no gradient"
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        losses.append(loss_now().item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] * 0.9, losses
