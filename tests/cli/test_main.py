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


def _raising(exc: BaseException):
    def func(args):
        raise exc

    return func


def _run_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> int:
    """Run `agegender data inspect x` with its command replaced by one that raises ``exc``."""
    monkeypatch.setattr(cli, "cmd_inspect", _raising(exc))
    monkeypatch.delenv("AGEGENDER_DEBUG", raising=False)
    return cli.main(["data", "inspect", "x"])


def test_project_errors_are_one_line_user_errors(monkeypatch: pytest.MonkeyPatch, capsys):
    from agegender.data.records import DataError

    assert _run_with(monkeypatch, DataError("x.csv: no labelled images")) == 2
    assert capsys.readouterr().err == "error: x.csv: no labelled images\n"


def test_other_errors_are_bugs_with_their_traceback(monkeypatch: pytest.MonkeyPatch, capsys):
    # A ValueError from deep inside used to print "error: ..." and exit 2 like a user mistake, traceback lost.
    for exc in (ValueError("range() arg 3 must not be zero"), KeyError("age"), RuntimeError("boom")):
        assert _run_with(monkeypatch, exc) == 70
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "internal error" in err and str(exc) in err
    assert _run_with(monkeypatch, KeyboardInterrupt()) == 130
    monkeypatch.setattr(cli, "cmd_inspect", _raising(KeyError("age")))
    monkeypatch.setenv("AGEGENDER_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["data", "inspect", "x"])


def test_every_project_error_is_a_user_error_and_keeps_its_old_base():
    from agegender.data.images import ImageError
    from agegender.data.records import DataError
    from agegender.errors import AgeGenderError, ConfigError, MissingExtraError
    from agegender.models.checkpoint import CheckpointError
    from agegender.models.folder import ModelFolderError
    from agegender.models.registry import WeightsError, WeightsNotFoundError
    from agegender.training.config import RecipeError
    from agegender.utils.io import OutputError, OutputNotWrittenError

    old_bases = {
        DataError: ValueError,
        ImageError: ValueError,
        RecipeError: ValueError,
        ConfigError: ValueError,
        ModelFolderError: FileNotFoundError,
        WeightsError: RuntimeError,
        WeightsNotFoundError: FileNotFoundError,
        MissingExtraError: RuntimeError,
        OutputError: OSError,
        CheckpointError: Exception,
        OutputNotWrittenError: Exception,
    }
    for cls, base in old_bases.items():
        assert issubclass(cls, AgeGenderError) and issubclass(cls, base), cls
    assert OutputNotWrittenError.exit_code == 3 and DataError.exit_code == 2


@pytest.mark.parametrize(
    "argv",
    [[], ["data", "inspect"], ["train"], ["evaluate"], ["predict"], ["export"], ["package"], ["serve"]]
    + [["benchmark", "speed"], ["benchmark", "candidate"]],
)
def test_help_documents_the_exit_codes(argv: list[str], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        cli.main([*argv, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "exit codes: 0 ok;" in out and "2 user error" in out and "70 internal error" in out
    assert ("1 some inputs had no estimate" in out) == (argv == ["predict"])
