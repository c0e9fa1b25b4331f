"""Splits: deterministic, content-addressed, stratified, reusable through a split file."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from agegender.data.readers import read_dataset
from agegender.data.records import DataError, FaceRecord
from agegender.data.splits import (
    SPLIT_NAMES,
    age_band,
    compute_split,
    hash_side,
    load_split,
    save_split,
    split_records,
)


def _digest(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _records(n: int, seed: int = 0) -> list[FaceRecord]:
    """Synthetic records spread over all age bands and both genders, each with its own digest."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        age = float(rng.randint(0, 95))
        out.append(FaceRecord(Path(f"img_{i}.jpg"), age, rng.randint(0, 1), None, None, _digest(f"{seed}-{i}")))
    return out


def _sides(split: dict[str, list[FaceRecord]]) -> dict[Path, str]:
    return {r.path: side for side, recs in split.items() for r in recs}


@pytest.mark.parametrize(
    "band",
    [(0, "0-12"), (12, "0-12"), (13, "13-19"), (29.5, "30-39"), (69, "60-69"), (70, "70+"), (116, "70+"), (500, "70+")],
)
def test_age_band(band: tuple[float, str]) -> None:
    assert age_band(band[0]) == band[1]


def test_same_split_whatever_the_record_order() -> None:
    recs = _records(300)
    shuffled = recs[:]
    random.Random(1).shuffle(shuffled)
    assert compute_split(recs) == compute_split(shuffled)
    assert _sides(split_records(recs)) == _sides(split_records(shuffled))


def test_order_independent_with_conflicting_copies() -> None:
    """Copies of one file with different labels (duplicates='keep') must not make the split order-dependent."""
    recs = [FaceRecord(Path(f"a{i}.jpg"), 25.0, 0, None, None, _digest(f"a{i}")) for i in range(9)]
    recs += [FaceRecord(Path(f"b{i}.jpg"), 45.0, 1, None, None, _digest(f"b{i}")) for i in range(2)]
    recs.append(FaceRecord(Path("c1.jpg"), 25.0, 0, None, None, _digest("c")))
    recs.append(FaceRecord(Path("c2.jpg"), 45.0, 1, None, None, _digest("c")))
    assert compute_split(recs) == compute_split(recs[::-1])


def test_identical_files_same_side(tiny_utkface) -> None:
    reading = read_dataset(tiny_utkface.root, duplicates="keep")
    sides = {r.path.name: side for side, recs in split_records(reading.records).items() for r in recs}
    for pair in (tiny_utkface.same_label_dups, tiny_utkface.conflicting_dups):
        assert sides[pair[0]] == sides[pair[1]]


def test_identical_digests_same_side_synthetic() -> None:
    recs = _records(200)
    copies = [FaceRecord(Path(f"copy_{i}.jpg"), r.age, r.gender, None, None, r.digest) for i, r in enumerate(recs)]
    sides = _sides(split_records(recs + copies))
    for i, r in enumerate(recs):
        assert sides[r.path] == sides[Path(f"copy_{i}.jpg")]


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.5, 0.5, 0.0)])
def test_fractions_respected_per_stratum(fractions: tuple[float, float, float]) -> None:
    recs = _records(2000, seed=3)
    assignment = compute_split(recs, fractions)
    by_stratum: dict[str, Counter] = defaultdict(Counter)
    for r in recs:
        by_stratum[f"{age_band(r.age)}|{r.gender}"][assignment[r.digest]] += 1
    assert len(by_stratum) == 16  # 8 bands x 2 genders
    for counts in by_stratum.values():
        n = sum(counts.values())
        for name, f in zip(SPLIT_NAMES, fractions, strict=True):
            assert abs(counts[name] - n * f) <= 1, (counts, n)
    total = Counter(assignment.values())
    for name, f in zip(SPLIT_NAMES, fractions, strict=True):
        assert abs(total[name] - len(recs) * f) <= 16
    if fractions[2] == 0:
        assert total["test"] == 0


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.8, 0.1, 0.2), (1.2, -0.1, -0.1), (0.5, 0.25, 0.25, 0.0)])
def test_invalid_fractions(fractions: tuple[float, ...]) -> None:
    with pytest.raises(DataError, match="fractions"):
        compute_split(_records(10), fractions)


def test_record_without_digest() -> None:
    with pytest.raises(DataError, match="digest"):
        compute_split([FaceRecord(Path("x.jpg"), 20.0, 1)])


def test_split_file_saved_then_reused(tmp_path: Path) -> None:
    recs = _records(120)
    split_file = tmp_path / "sub" / "split.json"
    first = split_records(recs, split_file, fractions=(0.7, 0.15, 0.15))
    assert split_file.is_file()
    assignment, fractions = load_split(split_file)
    assert fractions == (0.7, 0.15, 0.15)
    assert assignment == {r.digest: side for side, rs in first.items() for r in rs}
    # Reused: identical, whatever the order and whatever fractions the caller passes now.
    again = split_records(recs[::-1], split_file, fractions=(0.34, 0.33, 0.33))
    assert _sides(again) == _sides(first)


def test_new_image_gets_stable_hash_side(tmp_path: Path) -> None:
    recs = _records(50)
    split_file = tmp_path / "split.json"
    before = _sides(split_records(recs, split_file))
    new = [FaceRecord(Path(f"new_{i}.jpg"), 30.0, 0, None, None, _digest(f"new-{i}")) for i in range(40)]
    after = _sides(split_records(recs + new, split_file))
    again = _sides(split_records(new[::-1] + recs, split_file))
    assert {p: after[p] for p in before} == before
    for r in new:
        assert after[r.path] == again[r.path] == hash_side(r.digest)
    assert set(after[r.path] for r in new) == {"train", "val", "test"}  # 40 hashes reach every side
    assert load_split(split_file)[0] == {r.digest: s for r in recs for p, s in before.items() if p == r.path}


def test_hash_side_thresholds() -> None:
    assert hash_side("00000000" + "0" * 24) == "train"
    assert hash_side("ffffffff" + "0" * 24) == "test"
    assert hash_side("cc000000" + "0" * 24) == "train"  # 0.797 of the hash range
    assert hash_side("cd000000" + "0" * 24) == "val"  # 0.801
    assert hash_side("e0000000" + "0" * 24) == "val"  # 0.875
    assert hash_side("e8000000" + "0" * 24) == "test"  # 0.906
    assert hash_side("ffffffff" + "0" * 24, (1.0, 0.0, 0.0)) == "train"


@pytest.mark.parametrize(
    "content",
    [
        b'{"fractions": [0.8, 0.1, 0.1], "assignment": {"ab',  # truncated JSON
        b"",
        b'{"assignment": {}}',  # no fractions
        b"[1, 2, 3]",
        b'{"fractions": [0.8, 0.1, 0.1], "assignment": ["train"]}',  # assignment not a mapping
        b'{"fractions": [0.8, 0.1, 0.1], "assignment": {"00": "holdout"}}',  # unknown side
        b'{"fractions": 0.8, "assignment": {}}',
        b"\xff\xfe\x00garbage\x9c",  # not even text
    ],
)
def test_corrupt_split_file(tmp_path: Path, content: bytes) -> None:
    split_file = tmp_path / "split.json"
    split_file.write_bytes(content)
    with pytest.raises(DataError, match="not a valid split file"):
        split_records(_records(5), split_file)


def test_missing_split_file_for_load(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_split(tmp_path / "nope.json")


def test_save_split_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    save_split({"b": "val", "a": "train"}, path, (0.8, 0.1, 0.1))
    payload = json.loads(path.read_text())
    assert list(payload["assignment"]) == ["a", "b"]
    assert load_split(path) == ({"a": "train", "b": "val"}, (0.8, 0.1, 0.1))
    assert not list(tmp_path.glob("*.tmp"))


def test_sample_records_spreads_over_ages_and_is_fixed() -> None:
    from agegender.data.records import FaceRecord
    from agegender.data.splits import sample_records

    records = [
        FaceRecord(Path(f"{i}.jpg"), float(i % 90), i % 2, digest=f"{(i * 7919) % 10007:08x}") for i in range(900)
    ]
    sample = sample_records(records, 90)
    assert len(sample) == 90 and sample == sample_records(list(reversed(records)), 90)
    ages = sorted(r.age for r in sample)
    assert ages[0] < 13 and ages[-1] >= 70  # children and the old, not just the first files
    assert abs(sum(r.gender for r in sample) - 45) <= 2
    assert sample_records(records[:5], 10) == records[:5]


def test_concurrent_writers_of_one_split_file_do_not_collide(tmp_path: Path) -> None:
    """DDP ranks record the same split at once: each writes under its own temporary name."""
    from concurrent.futures import ThreadPoolExecutor

    from agegender.data.splits import load_split, save_split

    assignment = {f"{i:032x}": "train" for i in range(2000)}
    target = tmp_path / "split.json"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: save_split(assignment, target, (0.8, 0.1, 0.1)), range(8)))
    assert load_split(target)[0] == assignment
    assert [p.name for p in tmp_path.iterdir()] == ["split.json"]
