"""The one record type every reader yields, and the report of what a reader had to reject."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from agegender.errors import AgeGenderError

GENDER_NAMES = {0: "male", 1: "female"}
RACE_NAMES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
MAX_AGE = 120


class DataError(AgeGenderError, ValueError):
    """A data problem that stops the run (strict mode or nothing usable): its message is for users."""


@dataclass(frozen=True)
class FaceRecord:
    """One face image and whatever labels it has; unlabelled images carry ``None``."""

    path: Path
    age: float | None = None
    gender: int | None = None
    race: int | None = None
    id: str | None = None
    digest: str | None = None

    @property
    def labelled(self) -> bool:
        return self.age is not None and self.gender is not None


@dataclass
class ReadReport:
    """Counts and first examples of every problem met while reading, so bad rows are visible, not silent."""

    source: str
    format: str
    rows: int = 0
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    notes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    hints: dict[str, str] = field(default_factory=dict)  # note kind -> why it happened and what to do

    def add(self, kind: str, example: str) -> None:
        self.problems[kind].append(example)

    def note(self, kind: str, example: str, hint: str | None = None) -> None:
        """Record something irregular that was handled (e.g. an odd file name that still parsed, a skipped
        file); ``hint`` explains the kind once, in the summary."""
        self.notes[kind].append(example)
        if hint:
            self.hints[kind] = hint

    @property
    def n_problems(self) -> int:
        return sum(len(v) for v in self.problems.values())

    def summary(self, examples: int = 3) -> str:
        lines = [f"{self.source} ({self.format}): {self.rows} rows read"]
        if not self.problems:
            lines.append("  no problems found")
        for kind, items in sorted(self.problems.items()):
            shown = ", ".join(items[:examples]) + (", ..." if len(items) > examples else "")
            lines.append(f"  excluded {len(items)} x {kind}: {shown}")
        return "\n".join(lines + self.note_lines(examples))

    def note_lines(self, examples: int = 3) -> list[str]:
        lines = []
        for kind, items in sorted(self.notes.items()):
            shown = ", ".join(items[:examples]) + (", ..." if len(items) > examples else "")
            hint = f" ({self.hints[kind]})" if kind in self.hints else ""
            lines.append(f"  note {len(items)} x {kind}: {shown}{hint}")
        return lines

    def to_dict(self, examples: int = 5) -> dict:
        return {
            "source": self.source,
            "format": self.format,
            "rows": self.rows,
            "problems": {k: {"count": len(v), "examples": v[:examples]} for k, v in self.problems.items()},
            "notes": {
                k: {"count": len(v), "examples": v[:examples], **({"hint": self.hints[k]} if k in self.hints else {})}
                for k, v in self.notes.items()
            },
        }

    def raise_if_strict(self, strict: bool) -> None:
        if strict and self.problems:
            raise DataError("strict mode: the data has problems\n" + self.summary())


@dataclass
class Reading:
    """What a reader returns: the usable records plus the report on what was excluded."""

    records: list[FaceRecord]
    report: ReadReport
    duplicate_groups: list[list[FaceRecord]] = field(default_factory=list)

    @property
    def excluded(self) -> int:
        """Rows or files read but left out (problems and dropped duplicate copies), so callers can say so."""
        return self.report.rows - len(self.records)
