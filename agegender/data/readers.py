"""Dataset readers: UTKFace folders, the competition layout, CSV manifests and plain image folders.

Every reader validates while it reads: bad rows are counted, reported with examples and excluded, never
crash the run; ``strict=True`` turns any problem into a :class:`DataError`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from agegender.data.images import ImageError, check_image, digest_bytes
from agegender.data.listing import list_images
from agegender.data.records import MAX_AGE, DataError, FaceRecord, Reading, ReadReport
from agegender.data.tables import read_table

FORMATS = ("utkface", "competition", "manifest", "images")
#: A folder holding this CSV is read as a manifest (``data align`` writes one; APPA-REAL ships one).
MANIFEST_NAME = "labels.csv"

# {age}_{gender}_{race}_{datetime}.jpg.chip.jpg, tolerating the irregular names of the original release:
# a missing race field, a space before ".jpg", and a missing dot before "jpg".
_UTK_NAME = re.compile(
    r"^(?P<age>\d+)_(?P<gender>\d+)(?:_(?P<race>\d+))?_(?P<date>\d{8,})\s*\.?jpg(?:\.chip\.jpg)?$", re.I
)
_UTK_REGULAR = re.compile(r"^\d+_\d+_\d+_\d{8,}\.jpg\.chip\.jpg$", re.I)


def parse_utkface_name(name: str) -> tuple[int, int, int | None] | None:
    """Return (age, gender, race-or-None) from a UTKFace file name, or None when it cannot be parsed."""
    m = _UTK_NAME.match(name)
    if not m:
        return None
    race = m.group("race")
    return int(m.group("age")), int(m.group("gender")), int(race) if race is not None else None


def _label_problem(age: object, gender: object) -> str | None:
    """Say what is wrong with a label pair, or None when it is usable."""
    try:
        a = float(age)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "age_not_a_number"
    if math.isnan(a):
        return "age_missing"
    if a < 0:
        return "age_negative"
    if a > MAX_AGE:
        return f"age_over_{MAX_AGE}"
    try:
        g = float(gender)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "gender_not_0_or_1"
    if math.isnan(g):
        return "gender_missing"
    if g not in (0.0, 1.0):
        return "gender_not_0_or_1"
    return None


def _validate_files(
    records: list[FaceRecord], report: ReadReport, check_images: bool, progress: bool
) -> list[FaceRecord]:
    """Read every file once: hash its bytes (duplicates, splits) and check that it decodes."""

    def work(rec: FaceRecord) -> tuple[FaceRecord, str | None, str | None]:
        try:
            data = rec.path.read_bytes()
        except FileNotFoundError:
            return rec, "missing_file", None
        except OSError:
            return rec, "unreadable_file", None
        if not data:
            return rec, "empty_image", None
        if check_images:
            try:
                check_image(data, rec.path.name)
            except ImageError as e:
                kind = "image_too_large" if "too large" in str(e) else "undecodable_image"
                return rec, kind, None
        # A chip cut from a photo keeps the photo's hash (manifest column source_digest), so splits and
        # duplicate checks keep it with its photo; everything else is hashed by its own bytes.
        return rec, None, rec.digest or digest_bytes(data)

    out: list[FaceRecord] = []
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(work, records)
        it = tqdm(results, total=len(records), desc="checking images", disable=not progress, leave=False)
        for rec, problem, digest in it:
            if problem:
                report.add(problem, str(rec.path))
            else:
                out.append(FaceRecord(rec.path, rec.age, rec.gender, rec.race, rec.id, digest))
    return out


def check_selected_images(
    records: Sequence[FaceRecord], source: str, progress: bool = False
) -> tuple[list[FaceRecord], ReadReport]:
    """Decode-check ``records`` read with ``check_images=False``: a quick run (``data.limit``) hashes every file
    (the split depends on all of them) but decodes only the images it will use."""
    report = ReadReport(source, "selected images", rows=len(records))
    return _validate_files(list(records), report, True, progress), report


def group_duplicates(records: Sequence[FaceRecord]) -> list[list[FaceRecord]]:
    """Groups (size > 1) of records whose files are byte-identical."""
    groups: dict[str, list[FaceRecord]] = defaultdict(list)
    for r in records:
        if r.digest:
            groups[r.digest].append(r)
    return [g for g in groups.values() if len(g) > 1]


def _resolve_duplicates(
    records: list[FaceRecord], report: ReadReport, policy: str
) -> tuple[list[FaceRecord], list[list[FaceRecord]]]:
    """Apply the duplicate policy: 'keep' all copies, or keep the 'first' copy of each identical group.

    Groups whose copies carry different labels cannot be trusted: under 'first' they are dropped whole.
    """
    groups = group_duplicates(records)
    if policy == "keep" or not groups:
        return records, groups
    if policy != "first":
        raise DataError(f"unknown duplicates policy {policy!r}: use 'first' or 'keep'")
    drop: set[int] = set()  # by identity: one file listed twice has two records with the same path
    for g in groups:
        labels = {(r.age, r.gender) for r in g}
        if len(labels) > 1 and all(r.labelled for r in g):
            report.add("conflicting_duplicate_labels", " = ".join(r.path.name for r in g))
            drop.update(id(r) for r in g)
        else:
            for r in g[1:]:
                if r.path == g[0].path:  # one file on two rows, not two files with the same bytes
                    report.note("listed_twice_dropped", f"{r.path.name} (the same file on two rows)")
                else:
                    report.note("duplicate_copy_dropped", f"{r.path.name} (= {g[0].path.name})")
                drop.add(id(r))
    return [r for r in records if id(r) not in drop], groups


def read_utkface(root: Path, report: ReadReport) -> list[FaceRecord]:
    images = root / "images" if (root / "images").is_dir() else root
    records = []
    for p in list_images(images, report=report):
        parsed = parse_utkface_name(p.name)
        if parsed is None:
            report.add("unparseable_name", p.name)
            continue
        if not _UTK_REGULAR.match(p.name):
            report.note("irregular_name", p.name)
        age, gender, race = parsed
        problem = _label_problem(age, gender)
        if problem:
            report.add(problem, p.name)
            continue
        records.append(FaceRecord(p, float(age), gender, race))
    return records


def _records_from_frame(
    df: pd.DataFrame, resolve: Callable[[dict], Path | None], report: ReadReport, labelled: bool
) -> list[FaceRecord]:
    records: list[FaceRecord] = []
    seen_ids: set[str] = set()
    for row in df.to_dict("records"):
        raw_id = row.get("id")
        rid = None if raw_id is None or pd.isna(raw_id) or str(raw_id) == "" else str(raw_id)
        label = rid or str(row.get("full_path", row.get("path", "?")))
        if rid is not None:
            if rid in seen_ids:
                report.add("duplicate_id", rid)
                continue
            seen_ids.add(rid)
        path = resolve(row)
        if path is None:
            report.add("missing_file", label)
            continue
        age = gender = race = None
        if labelled:
            problem = _label_problem(row.get("age"), row.get("gender"))
            if problem:
                report.add(problem, label)
                continue
            age, gender = float(row["age"]), int(float(row["gender"]))
            r = row.get("race")
            try:
                race = None if r is None or pd.isna(r) else int(float(r))
            except (TypeError, ValueError):
                report.note("race_invalid", label)
                race = None
        digest = row.get("source_digest")
        digest = digest if isinstance(digest, str) and digest else None
        records.append(FaceRecord(path, age, gender, race, rid, digest))
    return records


def _find_image_dir(root: Path) -> Path:
    for name in ("images", "train", "test", "imgs", "data"):
        if (root / name).is_dir():
            return root / name
    return root


def _id_resolver(root: Path) -> Callable[[dict], Path | None]:
    """Map an ``id`` or ``full_path`` column to a file: ids may lack the extension or sit in a sub-folder."""
    image_dir = _find_image_dir(root)
    index: dict[str, Path] = {}
    for p in list_images(root):
        index.setdefault(p.name, p)
        index.setdefault(p.stem, p)

    def resolve(row: dict) -> Path | None:
        if "full_path" in row and isinstance(row["full_path"], str):
            for base in (root, image_dir):
                cand = base / row["full_path"]
                if cand.is_file():
                    return cand
            return index.get(Path(row["full_path"]).name)
        rid = str(row.get("id"))
        cand = image_dir / rid
        if cand.is_file():
            return cand
        return index.get(rid) or index.get(Path(rid).stem)

    return resolve


def read_competition(root: Path, report: ReadReport, split: str = "train") -> list[FaceRecord]:
    csv = root / f"{split}.csv"
    if not csv.is_file():
        raise DataError(
            f"{root}: competition layout needs {csv.name} (found: {sorted(p.name for p in root.glob('*.csv'))})"
        )
    df = read_table(csv)
    labelled = split == "train"
    need = {"age", "gender"} if labelled else set()
    if "id" not in df.columns and "full_path" not in df.columns:
        raise DataError(f"{csv}: needs an 'id' or 'full_path' column (columns: {list(df.columns)})")
    if missing := need - set(df.columns):
        raise DataError(f"{csv}: missing columns {sorted(missing)} (columns: {list(df.columns)})")
    return _records_from_frame(df, _id_resolver(root), report, labelled)


def _missing_label_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in ("age", "gender") if c not in df.columns]


def _label_columns_hint(df: pd.DataFrame) -> str:
    columns = ", ".join(map(str, df.columns))
    return f"labels need both 'age' and 'gender' columns; found: {columns}; the images were read unlabelled"


def require_labels(path: str | Path, format: str = "auto") -> None:
    """Fail in a moment, naming what is missing, when ``path`` cannot hold labels at all (a manifest without
    ``age``/``gender``, a plain image folder), instead of after reading every image."""
    path = Path(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "manifest":
        df = read_table(path / MANIFEST_NAME if path.is_dir() else path)
        if missing := _missing_label_columns(df):
            cols = " and ".join(repr(c) for c in missing)
            found = ", ".join(map(str, df.columns))
            raise DataError(
                f"{path}: no labelled images: the manifest has no {cols} column (columns found: {found}); "
                "labels need both 'age' and 'gender'"
            )
    elif fmt == "images":
        raise DataError(
            f"{path}: no labelled images: read as a plain image folder, which has no labels (labels come from "
            "UTKFace file names age_gender_race_date.jpg, a competition train.csv, or a CSV manifest with 'age' "
            "and 'gender' columns; --format utkface forces the UTKFace reading)" + _utkface_hint(path)
        )


def read_manifest(csv: Path, report: ReadReport) -> list[FaceRecord]:
    df = read_table(csv)
    if "path" not in df.columns:
        raise DataError(f"{csv}: a manifest needs a 'path' column (columns: {list(df.columns)})")
    missing = _missing_label_columns(df)
    labelled = not missing
    if missing:
        report.note("missing_label_column", " and ".join(missing), _label_columns_hint(df))
    base = csv.parent

    def resolve(row: dict) -> Path | None:
        p = Path(str(row["path"]))
        p = p if p.is_absolute() else base / p
        return p if p.is_file() else None

    return _records_from_frame(df, resolve, report, labelled)


def read_images(paths: Iterable[Path], recursive: bool = True, report: ReadReport | None = None) -> list[FaceRecord]:
    out = []
    for p in paths:
        if p.is_dir():
            out.extend(FaceRecord(q) for q in list_images(p, recursive, report))
        else:
            out.append(FaceRecord(p))
    return out


def detect_format(path: Path) -> str:
    """Guess the layout of ``path`` so users rarely need ``--format``."""
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "manifest"
        return "images"
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if (path / "train.csv").is_file() or (path / "test.csv").is_file():
        return "competition"
    if (path / MANIFEST_NAME).is_file():
        return "manifest"
    named, sample = _utkface_names(path)
    if sample and named >= 0.8 * sample:
        return "utkface"
    return "images"


def _utkface_names(path: Path) -> tuple[int, int]:
    """How many of (up to 200) files in ``path`` (or its ``images/``) have UTKFace names, and how many were seen."""
    images = path / "images" if (path / "images").is_dir() else path
    sample = [p.name for _, p in zip(range(200), images.iterdir(), strict=False) if p.is_file()]
    return sum(parse_utkface_name(n) is not None for n in sample), len(sample)


def _utkface_hint(path: Path) -> str:
    """What to say when a folder read as plain images has some UTKFace names (auto-detection needs 80%)."""
    named, sample = _utkface_names(path) if path.is_dir() else (0, 0)
    if not named:
        return ""
    return f"; {named} of {sample} file names here are UTKFace names: --format utkface reads them labelled"


def read_dataset(
    path: str | Path,
    format: str = "auto",
    *,
    split: str = "train",
    strict: bool = False,
    check_images: bool = True,
    duplicates: str = "first",
    progress: bool = False,
) -> Reading:
    """Read any supported layout into validated :class:`FaceRecord` s plus a :class:`ReadReport`.

    ``split`` picks ``train.csv`` or ``test.csv`` in the competition layout. ``duplicates`` is 'first'
    (keep one copy of byte-identical files, drop groups whose copies disagree on labels) or 'keep'.
    """
    path = Path(path)
    fmt = detect_format(path) if format == "auto" else format
    if fmt not in FORMATS:
        raise DataError(f"unknown format {format!r}: choose one of {', '.join(FORMATS)} or 'auto'")
    report = ReadReport(str(path), fmt)
    if fmt == "utkface":
        records = read_utkface(path, report)
    elif fmt == "competition":
        records = read_competition(path, report, split)
    elif fmt == "manifest":
        records = read_manifest(path / MANIFEST_NAME if path.is_dir() else path, report)
    else:
        records = read_images([path], report=report)
        if format == "auto" and (hint := _utkface_hint(path)):
            report.note("read_unlabelled", str(path), hint.lstrip("; "))
    report.rows = len(records) + report.n_problems
    records = _validate_files(records, report, check_images, progress)
    records, groups = _resolve_duplicates(records, report, duplicates)
    report.raise_if_strict(strict)
    if not records and report.rows == 0 and fmt in ("manifest", "competition"):
        raise DataError(f"{path}: the CSV has a header but no rows")
    if not records:
        raise DataError(f"{path}: no usable images found\n" + report.summary())
    return Reading(records, report, groups)
