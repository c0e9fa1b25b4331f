"""What the demo page tells a visitor about the model, from its folder: how accurate it measured, under which
licence it may be used and what for. A visitor cannot read MODEL_CARD.md; the page is where they decide how
far to trust an estimate."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: MODEL_CARD.md sections quoted on the page (their headings as ``package`` writes them).
LICENCE_SECTION = "Training data and licence"
USE_SECTION = "Intended use"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def card_sections(text: str) -> dict[str, str]:
    """``## Heading`` -> its text, for a Markdown model card."""
    sections: dict[str, str] = {}
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        sections[heading.strip()] = body.strip()
    return sections


def accuracy_line(metrics: dict[str, Any]) -> str | None:
    """One sentence from ``metrics.json`` (written by ``agegender package``), or None without figures."""
    overall = metrics.get("overall") or {}
    mae, acc = overall.get("mae"), overall.get("gender_acc")
    if not isinstance(mae, int | float) or not isinstance(acc, int | float):
        return None
    given = metrics.get("data") or []
    names = [Path(str(d)).name for d in (given if isinstance(given, list) else [given]) if d]
    split = metrics.get("split", "test")
    if len(names) > 1:  # several datasets (``package --data A --data B``): one split of each
        where = f"{overall.get('n', '?')} faces of the {split} splits of {', '.join(names[:-1])} and {names[-1]}"
    else:
        where = f"{overall.get('n', '?')} faces of the {split} split of {names[0] if names else 'its data'}"
    return (
        f"**Measured accuracy** ({where}, never used in training): ages are off by {mae:.1f} years on average "
        f"(RMSE {overall.get('rmse', float('nan')):.1f}); gender is right for {acc:.1%} of faces. "
        "Expect larger errors on photos unlike those: side views, poor light, the very young and the old."
    )


def photos_line(stored: dict[str, Any]) -> str | None:
    """One sentence from ``metrics_photos.json`` (``agegender evaluate --photos --write``): what a person gets on
    whole photos; a test split's entry is preferred. None without figures."""
    entries = [e for e in stored.values() if isinstance(e, dict) and (e.get("overall") or {}).get("n")]
    if not entries:
        return None
    e = next((x for x in entries if x.get("split") == "test"), entries[0])
    o, split = e["overall"], e.get("split")
    where = (f"the {split} split of " if split else "") + (Path(str(e.get("dataset", ""))).name or "its data")
    return (
        f"**On whole photos** ({e['photos']} photos of {where}, never "
        f"used in training; detection, alignment and the network together): {e['estimated']} got an estimate, ages "
        f"off by {o['mae']:.1f} years on average, gender right for {o['gender_acc']:.1%}."
    )


def _licence(section: str) -> str | None:
    """The card's licence terms: its bold sentences (``package`` writes the restriction in bold)."""
    bold = [b.strip() for b in re.findall(r"\*\*(.+?)\*\*", section, flags=re.S)]
    return " ".join(" ".join(b.split()) for b in bold) or None


def model_facts(folder: Path | None) -> str:
    """Markdown for the page's *About* box: accuracy, licence and intended use, each when the folder has it."""
    if folder is None:
        return ""
    lines: list[str] = []
    accuracy = accuracy_line(_read_json(folder / "metrics.json"))
    lines.append(accuracy or "**Measured accuracy:** not recorded for this model (its folder has no metrics.json).")
    photos = photos_line(_read_json(folder / "metrics_photos.json"))
    if photos:
        lines.append(photos)
    try:
        sections = card_sections((folder / "MODEL_CARD.md").read_text())
    except OSError:
        sections = {}
    licence = _licence(sections.get(LICENCE_SECTION, ""))
    if licence:
        lines.append(f"**Licence:** {licence}")
    use = " ".join(sections.get(USE_SECTION, "").split())
    if use:
        lines.append(f"**Intended use:** {use}")
    if not sections:
        lines.append("**Licence and intended use:** not stated (the model folder has no MODEL_CARD.md).")
    return "\n\n".join(lines)
