"""The top-level CLI: help, errors without tracebacks, and the tcmalloc restart of `agegender train`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agegender.cli import main as cli


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("data", "train", "evaluate", "predict", "export", "package", "benchmark", "serve"):
        assert cmd in out


def test_unknown_recipe_is_a_clean_error(capsys: pytest.CaptureFixture[str]):
    assert cli.main(["train", "no_such_recipe", "--data", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: recipe 'no_such_recipe' not found") and "Traceback" not in err


def test_train_restarts_with_tcmalloc_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    lib = tmp_path / "libtcmalloc_minimal.so.4"
    lib.write_bytes(b"")
    calls = []
    monkeypatch.setattr(cli, "TCMALLOC_PATHS", (str(lib),))
    monkeypatch.setattr(cli.os, "execve", lambda exe, args, env: calls.append((exe, args, env)))
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv("AGEGENDER_TCMALLOC", raising=False)
    cli._maybe_reexec_with_tcmalloc(["train", "scratch_cnn"])
    ((exe, args, env),) = calls
    assert exe == sys.executable and args[-2:] == ["train", "scratch_cnn"]
    assert env["LD_PRELOAD"] == str(lib)
    # already preloaded, opted out, or not installed: no restart
    calls.clear()
    monkeypatch.setenv("LD_PRELOAD", str(lib))
    cli._maybe_reexec_with_tcmalloc(["train"])
    monkeypatch.delenv("LD_PRELOAD")
    monkeypatch.setenv("AGEGENDER_TCMALLOC", "0")
    cli._maybe_reexec_with_tcmalloc(["train"])
    monkeypatch.delenv("AGEGENDER_TCMALLOC")
    monkeypatch.setattr(cli, "TCMALLOC_PATHS", (str(tmp_path / "absent.so"),))
    cli._maybe_reexec_with_tcmalloc(["train"])
    assert calls == []
