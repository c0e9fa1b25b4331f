"""The base of every error whose message is meant for users.

The CLI prints these as one ``error: ...`` line and exits with their ``exit_code`` (2: a user mistake);
anything else is a bug and keeps its traceback. Subclasses keep their historical bases (``ValueError``,
``FileNotFoundError``, ``RuntimeError``) so existing ``except`` clauses still catch them.
"""

from __future__ import annotations

#: Exit codes of the ``agegender`` command (documented in README "Exit codes" and in each ``--help``).
EXIT_OK = 0
EXIT_SOME_INPUTS_FAILED = 1  # predict: some inputs got no estimate (their rows say why)
EXIT_USER_ERROR = 2  # a bad option, input or configuration: nothing was done
EXIT_OUTPUT_NOT_WRITTEN = 3  # the work finished but an output could not be written where asked
EXIT_INTERNAL_ERROR = 70  # a bug (sysexits EX_SOFTWARE): the traceback is printed
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM (128 + 15): e.g. a scheduler stopping a training run

EXIT_CODES_HELP = (
    "exit codes: 0 ok; 2 user error (bad option, input or configuration; nothing was done); "
    "3 an output could not be written (the results were kept elsewhere, the message says where); "
    "70 internal error (a bug: the traceback is printed); 130 interrupted (Ctrl-C); 143 stopped by SIGTERM"
)
PREDICT_EXIT_CODES_HELP = EXIT_CODES_HELP.replace("0 ok;", "0 ok; 1 some inputs had no estimate (see their status);")


class AgeGenderError(Exception):
    """An error caused by the user's input, options or environment; its message says what to do."""

    exit_code: int = EXIT_USER_ERROR


class ConfigError(AgeGenderError, ValueError):
    """An option or recipe value that is not one of the allowed ones (unknown name, wrong mode, ...)."""


class DetectorModelError(AgeGenderError, FileNotFoundError):
    """A face detector's model file is missing or unreadable; the message says where it looked."""


class Stopped(AgeGenderError):
    """A command stopped by a signal after saving what it had; the message says what was kept."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class MissingExtraError(AgeGenderError, RuntimeError):
    """A feature needs an optional dependency that is not installed; the message names the extra."""


#: Top-level modules of the optional extras (``pip install 'agegender[EXTRA]'``): the lean base install runs
#: prediction on ONNX Runtime; training, evaluation, export and the PyTorch backend need ``train``.
EXTRA_MODULES = {
    **dict.fromkeys(
        (
            "torch",
            "torchvision",
            "lightning",
            "pytorch_lightning",
            "timm",
            "albumentations",
            "albucore",
            "torchmetrics",
            "trackio",
            "safetensors",
            "sklearn",
            "matplotlib",
            "onnx",
            "yaml",
        ),
        "train",
    ),
    **dict.fromkeys(("gradio", "fastapi", "uvicorn", "multipart", "python_multipart", "starlette"), "serve"),
}


def missing_extra(error: ModuleNotFoundError, what: str) -> MissingExtraError | None:
    """The user-facing error for ``what`` failing on a module of an extra; None when no extra provides it."""
    module = (error.name or "").split(".")[0]
    extra = EXTRA_MODULES.get(module)
    if extra is None:
        return None
    return MissingExtraError(
        f"{what} needs the '{extra}' extra ({module} is missing): pip install 'agegender[{extra}]'"
    )
