"""Batch prediction over many images on a Ray cluster with Ray Data (``agegender predict --engine ray``).

One process on one machine does not scale to millions of photos; Ray Data reads the files (local folders, a
shared file system or any URI pyarrow reads, such as ``s3://`` or ``gs://``), streams them through a pool of
actors that each load the predictor once, and writes Parquet. Prediction itself is the project's own code
(:class:`~agegender.inference.predictor.Predictor` and :func:`~agegender.inference.batch.predict_loaded`), so
the rows are those of ``agegender predict --format csv``.

Python use, on a running cluster (``ray.init()`` or ``ray.init(address="auto")`` first)::

    from agegender.integrations.ray import FacePredictor, read_images

    ds = read_images(["s3://bucket/photos/"], recursive=True)
    faces = ds.map_batches(FacePredictor, fn_constructor_kwargs={"detector": "mtcnn"},
                           batch_size=32, concurrency=8, num_cpus=1, batch_format="numpy")
    faces.write_parquet("s3://bucket/predictions/")

or all of it, with resuming, in one call: :func:`predict_to_parquet`.

The output is a folder of Parquet part files (Ray writes one file per block; new runs add files). A re-run
into the same folder reads the ``path`` column of the parts there and predicts only the files not yet in it
(every file with a row counts as done, errors included).
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agegender.data.images import IMAGE_EXTENSIONS, ImageError, decode_image
from agegender.errors import ConfigError, MissingExtraError
from agegender.inference.batch import ROW_COLUMNS, FileResult, Loaded, collect_inputs, face_rows, predict_loaded

INSTALL_HINT = "pip install 'agegender[ray]'"

try:
    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    import ray
    import ray.data
except ModuleNotFoundError as e:  # the extra is missing: say how to install it, not a traceback
    raise MissingExtraError(f"--engine ray needs the 'ray' extra ({e.name} is missing): {INSTALL_HINT}") from None

__all__ = [
    "PARQUET_SCHEMA",
    "FacePredictor",
    "Inputs",
    "RunReport",
    "connect",
    "list_inputs",
    "predict_to_parquet",
    "read_images",
    "read_output",
    "results_table",
]

logger = logging.getLogger(__name__)

#: CPUs Ray reserves for a read or write task. Reading bytes and writing Parquet wait on storage; decoding and
#: prediction run in the actors, which take one core each: reserving a core for I/O too would leave the I/O
#: tasks waiting forever for a core the actors hold (the job hangs). Tasks that reserve nothing are not limited
#: by cores, so their concurrency is capped instead (else Ray starts dozens of worker processes).
IO_CPUS = 0

_NUMERIC = {"face": pa.int32(), "age": pa.float64(), "age_low": pa.float64(), "age_high": pa.float64()}
_NUMERIC |= {"gender_probability": pa.float64(), "quality": pa.float64()}
#: The CSV output's columns with fixed types, so every part file has the same schema (nulls where CSV has "").
PARQUET_SCHEMA = pa.schema([(c, _NUMERIC.get(c, pa.string())) for c in ROW_COLUMNS])


def results_table(results: Iterable[FileResult]) -> pa.Table:
    """The rows of :func:`~agegender.inference.batch.face_rows` as an Arrow table of :data:`PARQUET_SCHEMA`."""
    rows = [dict(zip(ROW_COLUMNS, row, strict=True)) for row in face_rows(results)]
    return pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA)


def _detector(name: str, model_path: str | None, threads: int) -> Any:
    """A detector limited to the actor's threads: N actors on N cores must not each spawn N threads."""
    import cv2

    from agegender.faces import create_detector
    from agegender.faces.detectors import detector_takes

    cv2.setNumThreads(threads)
    if model_path:
        return create_detector(name, model_path=model_path)
    if detector_takes(name, "num_threads"):  # "mtcnn:min_face_size=30", blazeface, auto
        return create_detector(name, num_threads=threads)
    return name


class FacePredictor:
    """A callable class for ``ray.data.Dataset.map_batches``: image bytes in, one row per face out.

    Input batches have the columns of ``ray.data.read_binary_files(..., include_paths=True)``: ``bytes``
    and ``path`` (``batch_format="numpy"``). Each actor loads the predictor once, here, not per batch.
    The output is an Arrow table of :data:`PARQUET_SCHEMA`. A file that does not decode (or, should it
    happen, makes prediction raise) becomes an ``error`` row with the message: a bad image never fails the job.
    """

    def __init__(
        self,
        model: str | None = None,
        backend: str = "auto",
        detector: str = "auto",
        detector_model: str | None = None,
        detect: bool = True,
        tta: bool = False,
        min_face: float = 0.0,
        min_quality: float = 0.0,
        threads: int = 1,
    ) -> None:
        from agegender.inference.predictor import Predictor

        self.detect = detect
        spec = _detector(detector, detector_model, threads) if detect else detector
        self.predictor = Predictor.load(  # one photo at a time: Ray runs one actor per core side by side
            model,
            backend=backend,
            detector=spec,
            tta=tta,
            threads=threads,
            min_face=min_face,
            min_quality=min_quality,
            workers=1,
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        loaded = [_decode(str(path), data) for path, data in zip(batch["path"], batch["bytes"], strict=True)]
        try:
            results = predict_loaded(self.predictor, loaded, self.detect)
        except Exception:  # isolate the image that raises instead of failing (and retrying) the whole job
            logger.exception("prediction failed on a batch of %d images; retrying them one by one", len(loaded))
            results = [r for entry in loaded for r in self._one(entry)]
        return results_table(results)

    def _one(self, entry: Loaded) -> list[FileResult]:
        try:
            return predict_loaded(self.predictor, [entry], self.detect)
        except Exception as e:
            logger.exception("prediction failed on %s", entry[0])
            return [FileResult(entry[0], None, "error", f"{entry[0]}: prediction failed ({type(e).__name__}: {e})")]


def _decode(path: str, data: Any) -> Loaded:
    notes: list[str] = []
    try:
        return path, None, decode_image(bytes(data), path, notes), "; ".join(notes)
    except ImageError as e:
        return path, None, None, str(e)


# ------------------------------------------------------------------------------------------------ inputs


@dataclass
class Source:
    """Files on one file system; ``prefix`` turns the paths Ray reports back into the URIs given
    (pyarrow drops the scheme: ``s3://bucket/a.jpg`` is read as ``bucket/a.jpg``)."""

    prefix: str
    filesystem: pafs.FileSystem
    paths: list[str] = field(default_factory=list)


@dataclass
class Inputs:
    """What the inputs expand to: files by file system, and the inputs that do not exist."""

    sources: dict[str, Source] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def uris(self) -> list[str]:
        return [s.prefix + p for s in self.sources.values() for p in s.paths]


def _is_uri(spec: str) -> bool:
    return "://" in spec


def _filesystem(spec: str) -> tuple[pafs.FileSystem, str, str]:
    """(file system, its path, the prefix that makes the path a URI again) for a local path or a URI."""
    if not _is_uri(spec):
        return pafs.LocalFileSystem(), os.path.abspath(spec), ""
    try:
        fs, path = pafs.FileSystem.from_uri(spec)
    except (pa.ArrowInvalid, ValueError, OSError) as e:
        raise ConfigError(f"{spec}: not a URI pyarrow can read ({e})") from None
    at = spec.find(path)
    return fs, path, spec[:at] if at > 0 else spec.split("://")[0] + "://"


def list_inputs(specs: Sequence[str], recursive: bool = False) -> Inputs:
    """Expand files, folders, glob patterns (local only) and URIs of files or folders into image files.

    Local inputs expand exactly as for ``agegender predict`` (:func:`~agegender.inference.batch.collect_inputs`)
    and are kept as absolute paths; folders behind a URI are listed with pyarrow, keeping image extensions.
    """
    found = Inputs()

    def add(prefix: str, fs: pafs.FileSystem, path: str) -> None:
        found.sources.setdefault(prefix, Source(prefix, fs)).paths.append(path)

    for spec in specs:
        if not _is_uri(spec):
            for item in collect_inputs([spec], recursive):
                path = os.path.abspath(item.path)
                if os.path.isfile(path):
                    add("", pafs.LocalFileSystem(), path)
                else:
                    found.missing.append(path)
            continue
        fs, root, prefix = _filesystem(spec)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.Directory:
            listing = fs.get_file_info(pafs.FileSelector(root, recursive=recursive))
            for f in sorted(listing, key=lambda f: f.path):
                if f.type == pafs.FileType.File and os.path.splitext(f.path)[1].lower() in IMAGE_EXTENSIONS:
                    add(prefix, fs, f.path)
        elif info.type == pafs.FileType.File:
            add(prefix, fs, root)
        else:
            found.missing.append(spec)
    for source in found.sources.values():  # an input given twice (or inside two folders) is read once
        source.paths = list(dict.fromkeys(source.paths))
    found.missing = list(dict.fromkeys(found.missing))
    return found


def _add_prefix(batch: pa.Table, prefix: str) -> pa.Table:
    paths = pa.array([prefix + p for p in batch.column("path").to_pylist()], pa.string())
    return batch.set_column(batch.schema.get_field_index("path"), "path", paths)


def read_images(
    inputs: Sequence[str] | Inputs,
    recursive: bool = False,
    skip: Iterable[str] = (),
    files_per_block: int = 32,
    concurrency: int = 2,
) -> ray.data.Dataset:
    """A Ray dataset of ``bytes`` and ``path`` (the URI or absolute path) for the image files of ``inputs``,
    less the paths in ``skip``; missing inputs are left out (see :func:`list_inputs`). Reading is lazy.

    ``files_per_block``: Ray would otherwise pack many small files into one block, and a block goes to one
    actor, so a few thousand photos could keep a single actor busy while the others wait; use the actors'
    batch size. ``concurrency``: read tasks at once (they reserve no CPU: see :data:`IO_CPUS`)."""
    found = inputs if isinstance(inputs, Inputs) else list_inputs(inputs, recursive)
    done = set(skip)
    parts = []
    for source in found.sources.values():
        todo = [p for p in source.paths if source.prefix + p not in done]
        if not todo:
            continue
        blocks = math.ceil(len(todo) / files_per_block)
        ds = ray.data.read_binary_files(
            todo,
            include_paths=True,
            filesystem=source.filesystem,
            num_cpus=IO_CPUS,
            concurrency=min(concurrency, blocks),
            override_num_blocks=blocks,
        )
        if source.prefix:  # fused into the read tasks by Ray Data: no extra pass over the data
            ds = ds.map_batches(_add_prefix, fn_kwargs={"prefix": source.prefix}, batch_format="pyarrow")
        parts.append(ds)
    if not parts:
        return ray.data.from_items([{"bytes": b"", "path": ""}]).limit(0)
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


# ------------------------------------------------------------------------------------------------ output


def read_output(output: str, columns: Sequence[str]) -> pa.Table:
    """``columns`` of every readable part file in the output folder (empty when there is none yet).

    A part that cannot be read (a job killed while writing it) is left out with a warning, so its files are
    predicted again; remove the file named in the warning before reading the folder with other tools.
    """
    fs, root, _ = _filesystem(output)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.File:
        raise ConfigError(f"--output {output} is a file: --engine ray writes a folder of Parquet part files")
    schema = pa.schema([PARQUET_SCHEMA.field(c) for c in columns])
    tables = [schema.empty_table()]
    if info.type == pafs.FileType.Directory:
        for part in sorted(f.path for f in fs.get_file_info(pafs.FileSelector(root)) if f.path.endswith(".parquet")):
            try:
                tables.append(pq.read_table(part, columns=list(columns), filesystem=fs).cast(schema))
            except (pa.ArrowException, OSError) as e:
                logger.warning("%s: unreadable part file left out, its images will be predicted again (%s)", part, e)
    return pa.concat_tables(tables)


def _write_missing(output: str, missing: list[str]) -> None:
    """Inputs that do not exist get their ``error`` row, as in ``agegender predict``."""
    fs, root, _ = _filesystem(output)
    table = results_table(FileResult(p, None, "error", f"{p}: file not found") for p in missing)
    pq.write_table(table, f"{root}/{uuid.uuid4().hex}_missing.parquet", filesystem=fs)


@dataclass
class RunReport:
    """What a run did, and the counts of the whole output folder (this run's rows and earlier ones)."""

    output: str
    listed: int  # image files the inputs expand to (missing inputs not included)
    already_done: int  # of those, skipped because the output has them
    predicted: int  # sent to the actors this run
    missing: list[str]
    files: Counter  # files in the output by status (ok, no_face, skipped, error)
    faces: Counter  # faces in the output by status (ok, low_quality, skipped)


def connect(address: str | None = None, num_cpus: int | None = None, quiet: bool = False) -> bool:
    """Connect to a cluster (``auto``, ``ray://host:10001``, else ``$RAY_ADDRESS``) or start a local one;
    True when this call started Ray (so the caller shuts it down). Ray Data's progress bars follow ``quiet``."""
    ray.data.DataContext.get_current().enable_progress_bars = not quiet
    if quiet:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray.is_initialized():
        return False
    if address or os.environ.get("RAY_ADDRESS"):  # set by `ray job submit` for the job's driver
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    return True


def default_workers(threads: int = 1) -> int:
    """One actor per ``threads`` CPU cores of the cluster (at least one)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)


def predict_to_parquet(
    inputs: Sequence[str],
    output: str,
    *,
    recursive: bool = False,
    workers: int | None = None,
    batch_size: int = 32,
    rows_per_file: int = 10_000,
    threads: int = 1,
    **predictor: Any,
) -> RunReport:
    """Predict every image file of ``inputs`` not yet in ``output`` (a folder of Parquet parts) on Ray.

    ``workers`` actors (default :func:`default_workers`) of ``threads`` CPUs each run ``batch_size`` images at a
    time; ``predictor`` keyword arguments go to :class:`FacePredictor` (model, backend, detector, detect, ...).
    Ray must be initialised (:func:`connect`). Parts hold at least ``rows_per_file`` rows (the last may hold
    fewer), so a million photos do not become tens of thousands of tiny files.
    """
    found = list_inputs(inputs, recursive)
    fs, root, _ = _filesystem(output)
    done = set(read_output(output, ["path"]).column("path").to_pylist())
    try:
        fs.create_dir(root, recursive=True)
    except OSError as e:
        raise ConfigError(f"--output {output}: cannot create the folder ({e})") from None
    missing = [p for p in found.missing if p not in done]
    if missing:
        _write_missing(output, missing)
    uris = found.uris()
    todo = [u for u in uris if u not in done]
    logger.info("%d image files, %d already in %s, %d to predict", len(uris), len(uris) - len(todo), output, len(todo))
    if todo:
        n = min(workers or default_workers(threads), math.ceil(len(todo) / batch_size))  # no idle actors
        faces = read_images(found, skip=done, files_per_block=batch_size, concurrency=n).map_batches(
            FacePredictor,
            fn_constructor_kwargs={**predictor, "threads": threads},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=n),
            num_cpus=threads,
        )
        io = {"num_cpus": IO_CPUS}
        writers = min(n, math.ceil(len(todo) / rows_per_file))  # parts are >= rows_per_file rows (faces >= files)
        faces.write_parquet(
            root, filesystem=fs, min_rows_per_file=rows_per_file, ray_remote_args=io, concurrency=writers
        )
    table = read_output(output, ["path", "file_status", "status"])
    files = Counter(dict(zip(*_file_status_counts(table), strict=True)))
    faces_by_status = Counter(s for s in table.column("status").to_pylist() if s is not None)
    return RunReport(output, len(uris), len(uris) - len(todo), len(todo), missing, files, faces_by_status)


def _file_status_counts(table: pa.Table) -> tuple[list[str], list[int]]:
    """Files (not rows: a photo with three faces has three rows) by status."""
    per_file = table.group_by(["path", "file_status"]).aggregate([]).column("file_status")
    counts = per_file.value_counts().to_pylist()
    return [c["values"] for c in counts], [c["counts"] for c in counts]
