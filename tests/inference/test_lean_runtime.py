"""The ONNX runtime path imports no training stack: checked in fresh interpreters, after real predictions.

A fresh ``python -c`` process is the only honest check: in the test process torch is long imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PHOTO = REPO / "agegender" / "serving" / "examples" / "astronaut.jpg"
#: Never imported when the ONNX backend runs (the lean install does not even have them).
TRAINING_STACK = ("torch", "lightning", "pytorch_lightning", "timm", "torchvision", "albumentations", "safetensors")
#: Neither is imported when predicting on image files (pandas only reads CSV inputs; sklearn/matplotlib evaluate).
NOT_FOR_FILES = ("pandas", "sklearn", "matplotlib")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def imported_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the heavy top-level modules it left in ``sys.modules``."""
    watch = TRAINING_STACK + NOT_FOR_FILES
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {watch!r} if m in sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_predictor_api_on_onnx_imports_no_training_stack() -> None:
    code = (
        "from agegender import Predictor\n"
        "p = Predictor.load()\n"
        f"faces = p.predict({str(PHOTO)!r})\n"
        "assert p.engine.name == 'onnx' and faces and faces[0].age is not None, faces\n"
    )
    assert imported_after(code) == []


def test_predict_command_imports_no_training_stack() -> None:
    code = (
        "from agegender.cli.main import main\n"
        f"assert main(['predict', '-q', '--format', 'json', {str(PHOTO)!r}]) == 0\n"
    )
    assert imported_after(code) == []


@pytest.mark.parametrize(
    "modules",
    [
        ["agegender.data.images", "agegender.data.records", "agegender.data.listing"],
        ["agegender.faces", "agegender.faces.detectors", "agegender.faces.align", "agegender.faces.select"],
        ["agegender.inference.batch", "agegender.inference.predictor", "agegender.inference.engine"],
        ["agegender.models.folder", "agegender.cli.main", "agegender.cli.predict"],
    ],
    ids=["data", "faces", "inference", "models+cli"],
)
def test_runtime_modules_import_no_training_stack(modules: list[str]) -> None:
    assert imported_after("\n".join(f"import {m}" for m in modules)) == []


def test_serving_imports_no_training_stack() -> None:
    pytest.importorskip("gradio", reason="serving needs the 'serve' extra")
    found = imported_after("import agegender.serving.app\nimport agegender.cli.serve")
    assert not set(found) & set(TRAINING_STACK), found


def test_face_chips_import_no_torch() -> None:
    """``data align`` reads labelled datasets (pandas is fine there) but needs no training stack."""
    assert not set(imported_after("import agegender.faces.chips")) & set(TRAINING_STACK)


@pytest.mark.parametrize(
    "argv",
    [["predict", "-q", "--backend", "torch", str(PHOTO)], ["train", "--list"]],
    ids=["predict-torch-backend", "train"],
)
def test_a_command_without_its_extra_names_it(argv: list[str]) -> None:
    """As in the lean install (a fresh interpreter where torch cannot be imported): the command names the extra."""
    code = f"import sys\nsys.modules['torch'] = None\nfrom agegender.cli.main import main\nsys.exit(main({argv!r}))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "needs the 'train' extra" in done.stderr and "pip install 'agegender[train]'" in done.stderr
