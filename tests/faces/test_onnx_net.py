"""The shared ONNX Runtime wrapper of the detectors: outputs by name, a clear error for a wrong name."""

from __future__ import annotations

import numpy as np
import pytest

from agegender.faces.detectors import blazeface as blaze_module
from agegender.faces.detectors.onnx_net import OnnxNet

SHORT = blaze_module.MODEL_DIR / blaze_module.BLAZEFACE_MODELS["short"].file


def test_outputs_come_in_the_order_asked_for() -> None:
    batch = np.zeros((1, 3, 128, 128), np.float32)
    scores, boxes = OnnxNet(SHORT, ["classificators", "regressors"])(batch)
    boxes2, scores2 = OnnxNet(SHORT, ["regressors", "classificators"])(batch)
    assert scores.shape == scores2.shape == (1, 896, 1) and boxes.shape == boxes2.shape == (1, 896, 16)
    np.testing.assert_array_equal(scores, scores2)


def test_an_unknown_output_name_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="no outputs \\['scores'\\]"):
        OnnxNet(SHORT, ["scores", "regressors"])


def test_inputs_of_another_dtype_are_cast() -> None:
    scores = OnnxNet(SHORT, ["classificators"])(np.zeros((1, 3, 128, 128), np.uint8))[0]
    assert scores.dtype == np.float32
