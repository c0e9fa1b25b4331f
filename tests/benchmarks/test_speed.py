"""The speed benchmark runs on a plain install: its sample photo ships with the package."""

from __future__ import annotations

import sys

import pytest

from agegender.benchmarks import speed


def test_sample_photo_needs_no_scikit_image(monkeypatch: pytest.MonkeyPatch):
    # `benchmark speed` and `benchmark candidate` used to import scikit-image, which only the test extra installs.
    monkeypatch.setitem(sys.modules, "skimage", None)  # any `import skimage` now fails
    photo = speed._sample_photo()
    assert photo.shape == (512, 512, 3) and photo.dtype.name == "uint8"
    assert speed.SAMPLE_PHOTO.is_file()
