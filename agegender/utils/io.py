"""Writing outputs honestly: check that a destination is writable before the work, write atomically, and
never lose finished results to a destination that fails at the end."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agegender.errors import EXIT_OUTPUT_NOT_WRITTEN, AgeGenderError

logger = logging.getLogger(__name__)

Kind = Literal["file", "dir"]


class OutputError(AgeGenderError, OSError):
    """An output destination that cannot be written, found before any work was done."""


class OutputNotWrittenError(AgeGenderError):
    """The work finished but an output could not be written where asked; the message says where it went."""

    exit_code = EXIT_OUTPUT_NOT_WRITTEN


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _probe(existing: Path, create_dir: bool) -> None:
    """Create and remove a temporary entry in ``existing``: the only honest test (``os.access`` says yes to
    root even on a read-only file system, and says nothing about a full disk or a vanished mount)."""
    probe = existing / f".agegender-write-test-{uuid.uuid4().hex[:12]}"
    if create_dir:
        probe.mkdir()
        probe.rmdir()
    else:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()


def ensure_writable(path: str | Path, kind: Kind = "file") -> Path:
    """Raise :class:`OutputError` now if ``path`` (a file, or a folder for ``kind="dir"``) could not be written
    later, so a long run never ends in a traceback with nothing saved. Creates nothing that stays."""
    given = path = Path(path)
    if kind == "file" and path.is_symlink():  # written through: the target's folder must take the new file
        path = Path(os.path.realpath(path))
    if kind == "file" and path.exists() and not path.is_file() and not path.is_dir():
        return given  # a device or a pipe, written to directly; if that fails, the results are kept elsewhere
    if kind == "file" and path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder, but a file name is expected")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise OutputError(f"cannot write into {path}: it is a file, but a folder is expected")
    if kind == "file" and path.is_file():
        try:  # an existing file must be replaceable (its folder) and, for plain writers, openable
            with open(path, "a"):
                pass
        except OSError as e:
            raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    folder = path if kind == "dir" else path.parent
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise OutputError(f"cannot write {path}: {existing} is a file, not a folder")
    try:
        _probe(existing, create_dir=existing != folder)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {existing} is not writable ({e.strerror or e})") from None
    return given


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written output.

    A link is written through (its target gets the text, the link stays), and what is not a regular file (a
    device such as ``/dev/stdout``, a pipe) is written to directly: renaming over it would replace it."""
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file() and not path.is_dir():
        with open(path, "w", newline="") as f:
            f.write(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would survive the rename; 0666 here is reduced by the umask as usual.
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Saved:
    """Where an output went: ``path`` is ``requested`` unless writing there failed (``error`` says why)."""

    requested: Path
    path: Path | None
    error: str | None = None


def save_output(path: str | Path, write: Callable[[Path], object]) -> Saved:
    """Run ``write(path)``; if it fails with an OSError, run it again into a fresh temporary folder, because
    results that took minutes to compute are worth more than the exact place they were asked for."""
    path = Path(path)
    try:
        write(path)
        return Saved(path, path)
    except OSError as e:
        reason = e.strerror or str(e)
    fallback = Path(tempfile.mkdtemp(prefix="agegender-unsaved-")) / (path.name or "output")
    try:
        write(fallback)
    except OSError as e:
        return Saved(path, None, f"could not write {path} ({reason}), nor {fallback} ({e.strerror or e})")
    logger.warning("could not write %s (%s); wrote %s instead", path, reason, fallback)
    return Saved(path, fallback, f"could not write {path} ({reason}); the results were kept in {fallback}")


def write_text_output(path: str | Path, text: str) -> Saved:
    """:func:`save_output` for one text file, written atomically."""
    return save_output(path, lambda p: atomic_write_text(p, text))


def raise_if_unsaved(saved: Iterable[Saved]) -> None:
    """Raise :class:`OutputNotWrittenError` (exit code 3) naming every output that is not where it was asked."""
    errors = [s.error for s in saved if s.error]
    if errors:
        raise OutputNotWrittenError("; ".join(errors))
