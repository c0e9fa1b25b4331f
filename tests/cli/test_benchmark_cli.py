"""`agegender benchmark` writes under runs/benchmarks/ by default: the committed tables change only when named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agegender.cli.main import main


@pytest.fixture
def fake_speed(monkeypatch: pytest.MonkeyPatch) -> dict:
    result = {"rows": [{"backend": "onnx", "faces_per_s": 1.0}]}
    monkeypatch.setattr("agegender.benchmarks.speed.benchmark_speed", lambda *a, **k: result)
    monkeypatch.setattr("agegender.benchmarks.speed.format_speed", lambda r: "| backend |\n|---|\n| onnx |")
    return result


def test_speed_writes_under_runs_unless_output_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_speed: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    committed = tmp_path / "benchmarks" / "results" / "speed.json"
    committed.parent.mkdir(parents=True)
    committed.write_text("[]\n")
    assert main(["benchmark", "speed"]) == 0
    assert json.loads((tmp_path / "runs" / "benchmarks" / "speed.json").read_text()) == fake_speed
    assert (tmp_path / "runs" / "benchmarks" / "speed.md").is_file()
    assert committed.read_text() == "[]\n"
    assert "wrote runs/benchmarks/speed.json" in capsys.readouterr().out
    assert main(["benchmark", "speed", "--output", str(committed)]) == 0
    assert json.loads(committed.read_text()) == fake_speed


def test_candidate_table_defaults_under_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rows: list[tuple[dict, Path]] = []
    monkeypatch.setattr("agegender.benchmarks.candidates.candidate_row", lambda *a, **k: {"name": "tiny"})
    monkeypatch.setattr("agegender.benchmarks.candidates.update_table", lambda row, p: rows.append((row, p)) or "")
    monkeypatch.chdir(tmp_path)
    assert main(["benchmark", "candidate", "runs/tiny", "--data", "data"]) == 0
    assert rows == [({"name": "tiny"}, Path("runs/benchmarks/candidates.json"))]
