"""Fixtures shared by the face tests: a real photo with one face and the default landmark detector."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import astronaut

from agegender.faces import create_detector
from agegender.faces.detectors import MTCNNDetector


@pytest.fixture(scope="session")
def astro() -> np.ndarray:
    return astronaut()


@pytest.fixture(scope="session")
def mtcnn() -> MTCNNDetector:
    return create_detector("mtcnn")
