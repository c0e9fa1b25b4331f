"""Interval widening: the per-reason scale from a model config, fitting a scale, and coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agegender.inference.calibration import (
    INTERVAL_LEVEL,
    central_z,
    fit_interval_scale,
    interval_coverage,
    interval_scale,
)

CONFIG = {"calibration": {"interval_scale": {"ok": 1.1, "small": 1.8, "blurry": 1.4}, "level": 0.8}}


def test_central_z() -> None:
    assert central_z(0.8) == pytest.approx(1.2816, abs=1e-4)
    assert central_z(0.95) == pytest.approx(1.9600, abs=1e-4)
    assert INTERVAL_LEVEL == 0.8
    with pytest.raises(ValueError):
        central_z(1.0)


def test_interval_scale_takes_the_largest_over_reasons() -> None:
    assert interval_scale(CONFIG) == 1.1  # an ok face
    assert interval_scale(CONFIG, ["blurry"]) == 1.4
    assert interval_scale(CONFIG, ["blurry", "small"]) == 1.8
    assert interval_scale(CONFIG, ["turned"]) == 1.1  # not fitted: no narrower than an ok face
    assert interval_scale({}, ["small"]) == 1.0  # no calibration in the config
    assert interval_scale(None) == 1.0
    assert interval_scale({"calibration": {"interval_scale": {"small": 0.9}}}, ["small"]) == 1.0


def test_interval_coverage_counts_errors_inside_z_std_scale() -> None:
    z = central_z(0.8)
    std = np.ones(4)
    err = np.array([0.5, 1.0, 1.5, 3.0]) * z  # inside for scale >= 0.5, 1, 1.5, 3
    assert interval_coverage(err, std) == 0.5
    assert interval_coverage(err, std, scale=1.5) == 0.75
    assert interval_coverage(-err, std, scale=3.0) == 1.0  # signed errors count by their size
    assert interval_coverage(err, 2 * std, scale=0.75) == 0.75  # the spread and the scale multiply
    assert interval_coverage(err, std, level=0.5) == 0.25  # z(0.5) = 0.674: only 0.5 z fits
    assert interval_coverage([1.0, 2.0], [math.nan, 1.0], scale=1.0) == 0.0  # NaN spread rows are ignored
    assert math.isnan(interval_coverage([1.0], [math.nan]))


def test_fit_interval_scale_is_the_smallest_reaching_the_level() -> None:
    z = central_z(0.8)
    need = np.arange(1, 11, dtype=float)  # face i needs scale i
    std = np.full(10, 2.0)
    err = need * z * std
    scale = fit_interval_scale(err, std)
    assert scale == pytest.approx(8.0)  # 8 of 10 faces covered = 80%
    assert interval_coverage(err, std, scale) >= 0.8
    assert interval_coverage(err, std, scale * 0.999) < 0.8
    assert fit_interval_scale(err, std, level=0.5) == pytest.approx(5.0 * z / central_z(0.5))


def test_fit_interval_scale_on_noise_reaches_the_level() -> None:
    rng = np.random.default_rng(0)
    std = rng.uniform(2, 8, 2000)
    err = rng.normal(0, std * 1.5)  # the model's spread is 1.5x too narrow
    scale = fit_interval_scale(err, std)
    assert scale == pytest.approx(1.5, rel=0.05)
    assert interval_coverage(err, std) < 0.7
    assert interval_coverage(err, std, scale) == pytest.approx(0.8, abs=1e-3)


def test_fit_interval_scale_edge_cases() -> None:
    assert fit_interval_scale([0.0, 0.0], [0.0, 1.0]) == 0.0  # exact answers need no widening
    with pytest.raises(ValueError, match="no faces"):
        fit_interval_scale([math.nan], [1.0])
    with pytest.raises(ValueError, match="zero spread"):
        fit_interval_scale([1.0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        fit_interval_scale([1.0, 1.0], [1.0])
