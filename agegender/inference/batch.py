"""Prediction over many inputs (files, folders, globs, manifests, the competition layout), never stopping on
bad input: every file gets a status, and outputs are written atomically."""

from __future__ import annotations

import csv
import glob
import io
import json
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from agegender.data.images import IMAGE_EXTENSIONS, ImageError, load_image
from agegender.data.records import DataError
from agegender.faces.select import main_face_index
from agegender.inference.predictor import FaceResult, Predictor, split_error
from agegender.utils.io import atomic_write_text

FALLBACK_AGE = 30.0  # used only where a row must be written but no estimate was possible (reported)


#: A decoded input: (path, id, RGB image or None when unreadable, the error message when unreadable, else a
#: note about the decode for the file's message, e.g. "first of 3 frames used", or "").
Loaded = tuple[str, str | None, np.ndarray | None, str]


@dataclass
class Item:
    path: Path
    id: str | None = None
    #: why this input cannot be read, known before reading (a manifest row without a path)
    error: str | None = None


@dataclass
class FileResult:
    path: str
    id: str | None
    #: ok: some face has an estimate (in ``single`` mode possibly the whole image); skipped: faces were found
    #: but the user's min_face / min_quality dropped them all; no_face: none found; error: unreadable
    status: str
    message: str = ""
    faces: list[FaceResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "id": self.id,
            "status": self.status,
            "message": self.message,
            "faces": [f.to_dict() for f in self.faces],
        }


def collect_inputs(inputs: Iterable[str], recursive: bool = False) -> list[Item]:
    """Expand files, folders and glob patterns into items, in a stable order; unknown paths stay (as errors)."""
    items: list[Item] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            for q in sorted(p.glob(pattern)):
                if q.suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                if q.is_file():
                    items.append(Item(q))
                elif q.is_symlink() and not q.exists():  # reported, not silently left out
                    items.append(Item(q, error=f"{q}: a link to a file that does not exist"))
        elif p.exists():
            items.append(Item(p))
        elif any(c in spec for c in "*?["):
            matches = [Item(Path(q)) for q in sorted(glob.glob(spec, recursive=True)) if Path(q).is_file()]
            # a pattern matching nothing is reported, like a missing file
            items += matches or [Item(p, error=f"{spec}: no file matches this pattern")]
        else:
            items.append(Item(p))  # reported as "file not found", not silently skipped
    return items


def competition_items(root: str | Path) -> list[Item]:
    """Rows of ``test.csv`` in input order; rows whose image is missing are kept (they become errors).

    Ids are read as text, exactly as written: "007" must stay "007" (not 7) in the file lookup and in
    ``submission.csv``.
    """

    from agegender.data.readers import _id_resolver  # pandas: only for CSV inputs
    from agegender.data.tables import read_table

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (--competition needs a folder with test.csv and the images)")
    csv_path = root / "test.csv"
    if not csv_path.is_file():
        found = sorted(p.name for p in root.glob("*.csv"))
        raise DataError(f"{root}: competition layout needs test.csv (found: {found})")
    df = read_table(csv_path)
    if "id" not in df.columns:
        raise DataError(f"{csv_path}: needs an 'id' column (columns: {list(df.columns)})")
    resolve = _id_resolver(root)
    return [Item(resolve({"id": i}) or root / i, i) for i in df["id"]]


def manifest_items(csv_path: str | Path) -> list[Item]:
    from agegender.data.tables import read_table  # pandas: only for CSV inputs

    df = read_table(Path(csv_path))
    if "path" not in df.columns:
        raise DataError(f"{csv_path}: a manifest needs a 'path' column")
    base = Path(csv_path).parent
    ids = df["id"].astype(str) if "id" in df.columns else [None] * len(df)
    items = []
    for row, (p, i) in enumerate(zip(df["path"], ids, strict=True), start=2):  # row 1 is the header
        if not str(p).strip():
            items.append(Item(Path(f"{csv_path}:{row}"), i, error=f"{csv_path}, row {row}: the path cell is empty"))
        else:  # relative paths are read from the manifest's folder, so a manifest travels with its images
            items.append(Item(Path(p) if Path(p).is_absolute() else base / p, i))
    return items


def _load(item: Item) -> tuple[Item, np.ndarray | None, str]:
    notes: list[str] = []
    if item.error:
        return item, None, item.error
    try:
        return item, load_image(item.path, notes), "; ".join(notes)
    except ImageError as e:
        return item, None, str(e)


def main_face(faces: list[FaceResult], shape: tuple[int, ...]) -> FaceResult:
    """The face a one-row-per-file output reports: the main one among the estimated faces, else among all."""
    pool = [f for f in faces if f.age is not None] or faces
    if len(pool) == 1 or any(f.box is None for f in pool):
        return pool[0]
    return pool[main_face_index([f.box for f in pool], shape)]


def _file_result(path: str, id_: str | None, faces: list[FaceResult], note: str = "") -> FileResult:
    """``note``: about the decode (``first of 3 frames used``), kept in the file's message whatever its status."""
    if any(f.age is not None for f in faces):
        status, message = "ok", ""
    elif faces:
        status, message = "skipped", "; ".join(f.message for f in faces)
    else:
        status, message = "no_face", "no face found"
    return FileResult(path, id_, status, "; ".join(filter(None, [message, note])), faces)


def predict_loaded(
    predictor: Predictor, loaded: list[Loaded], detect: bool = True, single: bool = False
) -> list[FileResult]:
    """Estimates for decoded images, one :class:`FileResult` per entry, in order; entries whose image is
    None (unreadable) become ``error`` results with their message. Shared by every engine (local, Ray), so
    each reports files and faces the same way."""
    good = [img for _, _, img, _ in loaded if img is not None]
    faces_iter = iter(predictor.predict_batch(good, detect=detect) if good else [])
    out = []
    for path, id_, img, message in loaded:  # message: the error when img is None, else a note (or "")
        if img is None:
            out.append(FileResult(path, id_, "error", message))
            continue
        faces, err = split_error(next(faces_iter))
        if err:
            out.append(FileResult(path, id_, "error", err))
            continue
        if single and faces:
            faces = [main_face(faces, img.shape)]
        elif single:
            faces = predictor.predict(img, detect=False)
            faces[0].message = "no face detected: the whole image was used"
        out.append(_file_result(path, id_, faces, message))
    return out


def run_predictions(
    predictor: Predictor,
    items: list[Item],
    detect: bool = True,
    single: bool = False,
    chunk: int = 32,
    progress: bool = True,
) -> Iterator[FileResult]:
    """Yield one :class:`FileResult` per item, in order.

    ``single``: exactly one face per file, for outputs that need one row per input: the main face (largest
    and most central, :func:`main_face_index`) among the estimated ones, flagged or not; the whole image
    only when no face was detected at all.
    """
    with (
        ThreadPoolExecutor(max_workers=2) as pool,
        tqdm(total=len(items), desc="images", disable=not progress, unit="img") as bar,
    ):
        for start in range(0, len(items), chunk):
            loaded = [(str(it.path), it.id, img, err) for it, img, err in pool.map(_load, items[start : start + chunk])]
            yield from predict_loaded(predictor, loaded, detect, single)
            bar.update(len(loaded))


def write_result(path: str | Path, result: dict, markdown: str) -> None:
    """A benchmark's figures as JSON at ``path`` and their markdown table beside it (same name, ``.md``)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    atomic_write_text(path.with_suffix(".md"), markdown.rstrip("\n") + "\n")


FACE_COLUMNS = ["age", "age_low", "age_high", "gender", "gender_probability", "status", "quality", "reasons", "box"]
#: The columns of the per-face table (CSV and Parquet): one row per face, one per file without faces.
ROW_COLUMNS = ["path", "id", "file_status", "face", *FACE_COLUMNS, "message"]


def face_rows(results: Iterable[FileResult]) -> Iterator[list]:
    """Rows of :data:`ROW_COLUMNS` with typed values: None where a cell is empty (no id, no face, no estimate),
    ``reasons`` joined by ';', ``box`` as space-separated numbers. Every tabular output builds on this."""
    for r in results:
        if not r.faces:
            yield [r.path, r.id or None, r.status, None, *[None] * len(FACE_COLUMNS), r.message]
        for i, f in enumerate(r.faces):
            box = " ".join(f"{v:g}" for v in f.box) if f.box else None
            values = [f.age, f.age_low, f.age_high, f.gender, f.gender_probability, f.status, f.quality]
            yield [r.path, r.id or None, r.status, i, *values, ";".join(f.reasons), box, f.message or r.message]


def _cell(value: object) -> object:
    return "" if value is None else value


def to_csv(results: list[FileResult]) -> str:
    """One row per face (one per file without faces); ``reasons`` joined by ';'."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(ROW_COLUMNS)
    w.writerows(map(_cell, row) for row in face_rows(results))
    return buf.getvalue()


def to_json(results: list[FileResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2) + "\n"


def to_submission(results: list[FileResult]) -> str:
    """``id,age,gender`` with gender 0 = male, 1 = female; one row per input row, in input order."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "age", "gender"])
    for r in results:
        ok = [f for f in r.faces if f.age is not None]
        if ok:
            w.writerow([r.id, round(ok[0].age, 2), int(ok[0].gender == "female")])
        else:
            w.writerow([r.id, FALLBACK_AGE, 0])
    return buf.getvalue()


def _table_status(face: FaceResult) -> str:
    if face.status == "low_quality":
        return f"low quality: {', '.join(face.reasons)}"
    if face.status == "skipped":
        return face.message or "skipped"
    return face.status


def _fit(name: str, width: int = 40) -> str:
    """``name`` cut from the left and padded to ``width`` terminal columns: CJK characters take two columns."""
    cols = [2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in name]
    while sum(cols) > width:
        name, cols = name[1:], cols[1:]
    return name + " " * (width - sum(cols))


def to_table(results: list[FileResult]) -> str:
    lines = [f"{'file':<40} {'face':>4} {'age':>6} {'80% interval':>13} {'gender':>7} {'p':>6}  status"]
    for r in results:
        name = _fit(Path(r.path).name)
        if not r.faces:
            lines.append(f"{name} {'-':>4} {'':>6} {'':>13} {'':>7} {'':>6}  {r.status}: {r.message}")
        for i, f in enumerate(r.faces):
            if f.age is None:
                lines.append(f"{name} {i:>4} {'':>6} {'':>13} {'':>7} {'':>6}  {_table_status(f)}")
                continue
            iv = f"{f.age_low:.0f}-{f.age_high:.0f}" if f.age_low is not None else "-"
            p = f.gender_probability
            lines.append(f"{name} {i:>4} {f.age:>6.1f} {iv:>13} {f.gender:>7} {p:>6.2f}  {_table_status(f)}")
    return "\n".join(lines)


def summarize(results: list[FileResult]) -> str:
    """Files by status and faces by status, for the line printed after a run."""
    files = Counter(r.status for r in results)
    faces = Counter(f.status for r in results for f in r.faces)
    return summary_line(files, faces)


def summary_line(files: Counter, faces: Counter) -> str:
    """The summary sentence from counts of files by status and of faces by status (any engine)."""
    return (
        f"{sum(files.values())} files: {files.get('ok', 0)} with an estimate, {files.get('no_face', 0)} without a "
        f"face, {files.get('skipped', 0)} with every face skipped, {files.get('error', 0)} unreadable; "
        f"faces: {faces.get('ok', 0)} ok, {faces.get('low_quality', 0)} low quality, {faces.get('skipped', 0)} skipped"
    )
