"""Relative links in README.md and docs/*.md point at files that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# [text](target) or [text](target "title"); images (![alt](target)) match too.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
SKIP_PREFIXES = ("http://", "https://", "mailto:", "#")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link outside fenced code blocks."""
    kept = []
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            kept.append("")
        else:
            kept.append("" if in_fence else line)
    prose = "\n".join(kept)
    return [(prose.count("\n", 0, match.start(1)) + 1, match.group(1)) for match in LINK.finditer(prose)]


def test_relative_links_resolve() -> None:
    broken = []
    for md in _markdown_files():
        for number, target in _links(md.read_text(encoding="utf-8")):
            if target.lower().startswith(SKIP_PREFIXES):
                continue
            path = target.split("#", 1)[0]
            if not path:
                continue
            if not (md.parent / path).exists():
                broken.append(f"{md.relative_to(ROOT)}:{number}: {target}")
    assert not broken, "broken relative links:\n" + "\n".join(broken)
