"""``agegender predict --engine ray`` options, and the message without the extra (no Ray cluster needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import agegender.integrations
from agegender.cli.main import main

PHOTO = str(Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--competition", "x", "--output", "o"], "--competition is not supported with --engine ray"),
        (["--format", "json", "--output", "o"], "drop --format json"),
        ([], "needs --output FOLDER"),
    ],
)
def test_unsupported_options_are_errors(args: list[str], message: str, capsys) -> None:
    assert main(["predict", "--engine", "ray", PHOTO, *args]) == 2
    assert message in capsys.readouterr().err


def test_ray_options_need_the_ray_engine(capsys) -> None:
    assert main(["predict", PHOTO, "--address", "auto"]) == 2
    assert "error: --address applies to --engine ray" in capsys.readouterr().err


def test_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where ray is not installed
    monkeypatch.delitem(sys.modules, "agegender.integrations.ray", raising=False)
    monkeypatch.delattr(agegender.integrations, "ray", raising=False)  # else `from ... import ray` reuses it
    assert main(["predict", "--engine", "ray", PHOTO, "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --engine ray needs the 'ray' extra (ray is missing): pip install 'agegender[ray]'"
    assert not (tmp_path / "out").exists()
