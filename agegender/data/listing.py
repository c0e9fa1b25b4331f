"""Which files of a folder are read as images, and a note about the others: no pandas, so prediction can use it."""

from __future__ import annotations

from pathlib import Path

from agegender.data.images import IMAGE_EXTENSIONS, skipped_file_kind
from agegender.data.records import ReadReport

__all__ = ["list_images", "skipped_files_note"]


def list_images(root: Path, recursive: bool = True, report: ReadReport | None = None) -> list[Path]:
    """Image files under ``root``; with a ``report``, every other file is noted as skipped (with why)."""
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in root.glob(pattern) if p.is_file())
    images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
    if report is not None and len(images) < len(files):
        for p in files:
            if p.suffix.lower() not in IMAGE_EXTENSIONS:
                kind, why = skipped_file_kind(p)
                report.note(kind, str(p.relative_to(root)), why)
    return images


def skipped_files_note(folder: Path, recursive: bool = False) -> str | None:
    """What a folder read leaves out, as ``note:`` lines for the CLI (None when nothing is skipped)."""
    report = ReadReport(str(folder), "images")
    list_images(folder, recursive, report)
    if not report.notes:
        return None
    skipped = sum(len(v) for v in report.notes.values())
    return f"note: {folder}: {skipped} files skipped, not read as images:\n" + "\n".join(report.note_lines())
