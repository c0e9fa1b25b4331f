"""Deterministic, content-addressed, stratified train/val/test splits that can be saved and reused.

Each image's side is decided from the hash of its bytes, so byte-identical copies always land together and
the same data always gives the same split, whatever the file order or machine.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from agegender.data.records import DataError, FaceRecord

SPLIT_NAMES = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
AGE_BANDS = ((0, 12), (13, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 69), (70, 200))


def age_band(age: float) -> str:
    """Name of the age band of ``age`` (bands used for stratification and per-slice metrics)."""
    for lo, hi in AGE_BANDS:
        if age <= hi:
            return f"{lo}-{hi}" if hi < 200 else f"{lo}+"
    return f"{AGE_BANDS[-1][0]}+"


def _stratum(rec: FaceRecord) -> str:
    if rec.age is None or rec.gender is None:
        return "unlabelled"
    return f"{age_band(rec.age)}|{rec.gender}"


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Largest-remainder allocation of n items to the splits, so small strata still get exact counts."""
    raw = [n * f for f in fractions]
    counts = [int(x) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def compute_split(records: Sequence[FaceRecord], fractions: Sequence[float] = DEFAULT_FRACTIONS) -> dict[str, str]:
    """Map each content digest to 'train', 'val' or 'test', stratified by age band and gender.

    Identical files share a digest and therefore a side; the stratum of a group is the smallest of its
    copies' strata, so that copies with different labels cannot make the split depend on record order.
    Within a stratum groups are ordered by digest, which is a fixed pseudo-random order.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    stratum_of: dict[str, str] = {}
    for r in records:
        if r.digest is None:
            raise DataError(f"{r.path}: record has no content digest; read it with read_dataset()")
        s = _stratum(r)
        stratum_of[r.digest] = min(stratum_of.get(r.digest, s), s)
    strata: dict[str, set[str]] = defaultdict(set)
    for digest, s in stratum_of.items():
        strata[s].add(digest)
    assignment: dict[str, str] = {}
    for key in sorted(strata):
        digests = sorted(strata[key])
        start = 0
        for name, count in zip(SPLIT_NAMES, _allocate(len(digests), fractions), strict=True):
            for d in digests[start : start + count]:
                assignment[d] = name
            start += count
    return assignment


def hash_side(digest: str, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    """Side for a digest absent from a saved split (new images): a stable threshold on the hash."""
    u = int(digest[:8], 16) / 0xFFFFFFFF
    cum = 0.0
    for name, f in zip(SPLIT_NAMES, fractions, strict=True):
        cum += f
        if u <= cum:
            return name
    return SPLIT_NAMES[-1]


def save_split(assignment: dict[str, str], path: str | Path, fractions: Sequence[float]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"fractions": list(fractions), "assignment": dict(sorted(assignment.items()))}
    text = json.dumps(payload, indent=0)
    if path.is_file() and path.read_text() == text:
        return  # already recorded (every DDP rank computes the same split)
    # A temporary name of its own: ranks writing the same split at once must not rename each other's file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def load_split(path: str | Path) -> tuple[dict[str, str], tuple[float, ...]]:
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        assignment, fractions = payload["assignment"], tuple(payload["fractions"])
        if not isinstance(assignment, dict) or not set(assignment.values()) <= set(SPLIT_NAMES):
            raise TypeError(f"'assignment' must map digests to {', '.join(SPLIT_NAMES)}")
        return assignment, fractions
    except FileNotFoundError:
        raise DataError(f"split file {path} does not exist") from None
    except KeyError as e:
        raise DataError(f"split file {path} is not a valid split file: it has no {e} entry") from None
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
        raise DataError(f"split file {path} is not a valid split file ({e})") from None


def split_sources(
    sources: dict[str, Sequence[FaceRecord]],
    split_file: str | Path | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    save_to: str | Path | None = None,
) -> dict[str, dict[str, list[FaceRecord]]]:
    """Split several datasets at once, each stratified on its own, into one assignment (one split file).

    With an existing ``split_file`` its assignment is reused. A source none of whose images are in it (a
    dataset added since) gets its own stratified split, added to the assignment; single new images of a
    known source are placed by their hash (:func:`hash_side`). The full assignment is written to ``save_to``
    (default: ``split_file`` when it does not exist yet), so a run folder always records the split it used.
    Returns ``{source: {"train": [...], "val": [...], "test": [...]}}``.
    """
    existing = split_file is not None and Path(split_file).is_file()
    assignment: dict[str, str] = {}
    if existing:
        assignment, fractions = load_split(split_file)  # type: ignore[arg-type]
        assignment = dict(assignment)
    changed = not existing
    for recs in sources.values():
        if not any(r.digest in assignment for r in recs):
            assignment.update(compute_split(recs, fractions))
            changed = True
    target = save_to if save_to is not None else (split_file if not existing else None)
    if target is not None and (changed or Path(target) != Path(split_file or "")):
        save_split(assignment, target, fractions)
    out: dict[str, dict[str, list[FaceRecord]]] = {}
    for name, recs in sources.items():
        parts: dict[str, list[FaceRecord]] = {n: [] for n in SPLIT_NAMES}
        for r in recs:
            side = assignment.get(r.digest) if r.digest else None
            parts[side or hash_side(r.digest or "0" * 8, fractions)].append(r)
        out[name] = parts
    return out


def split_records(
    records: Sequence[FaceRecord],
    split_file: str | Path | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> dict[str, list[FaceRecord]]:
    """Split one dataset; with ``split_file``, reuse it if it exists (new images by hash), else write it."""
    return split_sources({"data": records}, split_file, fractions)["data"]


def sample_records(records: Sequence[FaceRecord], n: int) -> list[FaceRecord]:
    """``n`` records spread over the strata (age band x gender) in proportion, each stratum's taken in
    content-hash order: a fixed, random-like sample, so quick runs (``data.limit``) see every age, not the
    first files by name (UTKFace's first 256 are ages 10-12 and 100+)."""
    if n >= len(records):
        return list(records)
    strata: dict[str, list[FaceRecord]] = defaultdict(list)
    for r in records:
        strata[_stratum(r)].append(r)
    keys = sorted(strata)
    counts = _allocate(n, [len(strata[k]) / len(records) for k in keys])
    chosen: list[FaceRecord] = []
    for k, c in zip(keys, counts, strict=True):
        chosen += sorted(strata[k], key=lambda r: r.digest or str(r.path))[:c]
    return chosen
