"""``agegender data inspect``: what is in a dataset, what is wrong with it, and how it splits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from agegender.data.readers import read_dataset
from agegender.data.records import GENDER_NAMES, RACE_NAMES, Reading
from agegender.data.splits import AGE_BANDS, age_band, split_records


def inspect_dataset(
    path: str | Path, format: str = "auto", split_file: str | Path | None = None, progress: bool = True
) -> tuple[dict, Reading]:
    reading = read_dataset(path, format, progress=progress)
    recs = reading.records
    labelled = [r for r in recs if r.labelled]
    info: dict = {"read": reading.report.to_dict(), "usable": len(recs), "labelled": len(labelled)}
    if labelled:
        bands = Counter(age_band(r.age) for r in labelled)
        info["age_bands"] = {age_band(lo): bands.get(age_band(lo), 0) for lo, _ in AGE_BANDS}
        ages = sorted(r.age for r in labelled)
        info["age_min"], info["age_max"] = ages[0], ages[-1]
        info["age_median"] = ages[len(ages) // 2]
        info["gender"] = {GENDER_NAMES[g]: n for g, n in sorted(Counter(r.gender for r in labelled).items())}
        races = Counter(r.race for r in labelled if r.race is not None)
        if races:
            info["race"] = {RACE_NAMES.get(k, str(k)): n for k, n in sorted(races.items())}
        splits = split_records(labelled, split_file)
        info["split_sizes"] = {k: len(v) for k, v in splits.items()}
    info["duplicate_groups"] = len(reading.duplicate_groups)
    info["duplicate_files"] = sum(len(g) for g in reading.duplicate_groups)
    info["duplicate_examples"] = [[r.path.name for r in g] for g in reading.duplicate_groups[:3]]
    return info, reading


def format_inspection(info: dict, reading: Reading, width: int = 40) -> str:
    lines = [reading.report.summary(), f"usable images: {info['usable']} (labelled: {info['labelled']})"]
    if "age_bands" in info:
        lines.append(f"age: min {info['age_min']:g}, median {info['age_median']:g}, max {info['age_max']:g}")
        top = max(info["age_bands"].values()) or 1
        for band, n in info["age_bands"].items():
            lines.append(f"  {band:>6} {n:6d} {'#' * round(width * n / top)}")
        lines.append("gender: " + ", ".join(f"{k} {v}" for k, v in info["gender"].items()))
        if "race" in info:
            lines.append("race: " + ", ".join(f"{k} {v}" for k, v in info["race"].items()))
        lines.append("split (train/val/test): " + " / ".join(str(v) for v in info["split_sizes"].values()))
    lines.append(
        f"duplicate groups (byte-identical files): {info['duplicate_groups']} groups, {info['duplicate_files']} files"
    )
    for g in info["duplicate_examples"]:
        lines.append("  " + " = ".join(g))
    return "\n".join(lines)
