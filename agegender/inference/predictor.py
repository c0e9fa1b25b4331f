"""The Python API: ``Predictor.load()`` then ``predict(image)`` -> one result per face."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agegender.data.images import ImageError, ScaledImage, check_input_type, load_image
from agegender.face_filter import QualityFilter
from agegender.inference.calibration import INTERVAL_LEVEL, central_z, interval_scale
from agegender.inference.engine import load_engine, predict_crops

__all__ = ["INTERVAL_LEVEL", "FaceResult", "Predictor", "split_error"]

#: What :meth:`Predictor._prepare` gives per input: ``(pixels, faces or None without detection, decode notes)``,
#: or the message of an input that could not be read.
_Prepared = tuple[np.ndarray, list | None, list[str]] | str


@dataclass
class FaceResult:
    """One face: where it is, how far to trust it, and the estimates (JSON-serialisable via to_dict).

    ``status``: ``ok``; ``low_quality`` (estimated, but ``reasons`` say why it is less reliable, and its
    interval is scaled by the model's calibration); ``skipped`` (dropped by the user's ``min_face`` /
    ``min_quality``: no estimate). ``age_std`` is the spread behind the interval, i.e. after widening.
    """

    status: str  # ok | low_quality | skipped | error
    age: float | None = None
    age_low: float | None = None
    age_high: float | None = None
    age_std: float | None = None
    gender: str | None = None  # male | female
    gender_probability: float | None = None  # probability of the predicted gender
    p_female: float | None = None
    box: list[float] | None = None  # x1, y1, x2, y2 in the photo; None when the whole image is the face
    score: float | None = None
    landmarks: list[list[float]] | None = None
    message: str = ""
    reasons: list[str] = field(default_factory=list)  # small | blurry | low_score | turned
    quality: float | None = None  # 0-1, 1 = nothing flagged; None when no detector looked (detect=False)
    interval_scale: float | None = None  # widening applied to the model's spread (1.0: none)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        """``"F, 34 (29–39)"``: the estimate and its 80% interval, as in tables and outputs (not the standard
        deviation); a flagged face ends with "?", a face without an estimate shows its status."""
        return self.describe()

    def describe(self, interval: bool = True) -> str:
        """:attr:`label`, or without the interval (``"F, 34"``) where space is short (a small face's drawing)."""
        if self.age is None:
            return self.status.replace("_", " ")
        spread = ""
        if interval and self.age_low is not None and self.age_high is not None:
            spread = f" ({round(self.age_low)}–{round(self.age_high)})"
        doubt = "?" if self.status == "low_quality" else ""
        return f"{'F' if self.gender == 'female' else 'M'}, {round(self.age)}{spread}{doubt}"


def split_error(faces: list[FaceResult]) -> tuple[list[FaceResult], str]:
    """``(faces, "")``, or ``([], why)`` for an input :meth:`Predictor.predict_batch` could not read, so callers
    never count its ``error`` entry as a face."""
    if len(faces) == 1 and faces[0].status == "error":
        return [], faces[0].message
    return faces, ""


def _result(age: float, std: float, pf: float, scale: float = 1.0, **where: Any) -> FaceResult:
    has_std = not math.isnan(std)
    spread = float(std) * scale
    z = central_z(INTERVAL_LEVEL)
    female = pf >= 0.5
    where.setdefault("status", "low_quality" if where.get("reasons") else "ok")
    return FaceResult(
        age=round(float(age), 2),
        age_std=round(spread, 2) if has_std else None,
        age_low=round(max(0.0, float(age - z * spread)), 2) if has_std else None,
        age_high=round(float(age + z * spread), 2) if has_std else None,
        gender="female" if female else "male",
        gender_probability=round(float(pf if female else 1 - pf), 4),
        p_female=round(float(pf), 4),
        interval_scale=round(scale, 4),
        **where,
    )


class Predictor:
    """Detects faces, aligns them to the training framing and estimates age and gender.

    >>> from agegender import Predictor
    >>> faces = Predictor.load().predict("photo.jpg")      # doctest: +SKIP
    >>> faces[0].age, faces[0].gender                      # doctest: +SKIP
    """

    def __init__(
        self,
        engine,
        config: dict | None = None,
        detector: Any = "auto",
        tta: bool = False,
        min_face_size: float | None = None,
        blur_threshold: float | None = None,
        min_face: float = 0.0,
        min_quality: float = 0.0,
        workers: int = 2,
    ) -> None:
        """``min_face_size`` / ``blur_threshold`` change what is flagged small / blurry; ``min_face`` (px) and
        ``min_quality`` (0-1) skip faces (see :class:`agegender.faces.QualityFilter`); defaults keep all.
        ``workers``: images of one :meth:`predict_batch` call detected at once (1: one after another)."""
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = int(workers)
        self.engine = engine
        self.config = config or {}
        self._detector_spec = detector
        self._detector = None
        self.tta = tta
        self.min_face_size = min_face_size
        self.blur_threshold = blur_threshold
        self.quality_filter = QualityFilter(min_face, min_quality)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        backend: str = "auto",
        detector: Any = "auto",
        tta: bool = False,
        threads: int | None = None,
        **kwargs: Any,
    ) -> Predictor:
        """Load a model folder (default: the shipped model) or a ``.ckpt``. ``backend``: auto | torch | onnx.

        ``auto`` runs the folder's ``model.onnx`` on ONNX Runtime (no torch needed), else the PyTorch network.

        Other keyword arguments go to the constructor (``min_face``, ``min_quality``, ...).
        """
        engine, config = load_engine(path, backend, threads)
        return cls(engine, config, detector, tta, **kwargs)

    @property
    def detector(self):
        if self._detector is None:
            from agegender.faces import create_detector

            spec = self._detector_spec
            self._detector = create_detector(spec) if isinstance(spec, str) else spec
        return self._detector

    def _faces(self, image: np.ndarray, quality_filter: QualityFilter, scale: float = 1.0) -> list:
        from agegender.faces import extract_faces

        kw: dict[str, Any] = {"quality_filter": quality_filter, "scale": scale}
        if self.min_face_size is not None:
            kw["min_face_size"] = self.min_face_size
        if self.blur_threshold is not None:
            kw["blur_threshold"] = self.blur_threshold
        return extract_faces(image, self.detector, **kw)

    def _prepare(self, image: Any, detect: bool, rule: QualityFilter) -> _Prepared:
        """Decode one input and (with ``detect``) find, align and flag its faces: the per-image work, which
        :meth:`_prepare_all` may run on several images at once. An unreadable input gives its error message."""
        notes: list[str] = []
        try:
            scaled = image if isinstance(image, ScaledImage) else None
            arr = scaled.pixels if scaled is not None else load_image(image, notes)
        except ImageError as e:
            return str(e)
        if not detect:
            return arr, None, notes
        return arr, self._faces(arr, rule, scaled.scale if scaled is not None else 1.0), notes

    def _prepare_all(self, images: Sequence[Any], detect: bool, rule: QualityFilter) -> list[_Prepared]:
        """:meth:`_prepare` for every image, in order; on ``workers`` threads when the detector allows it.

        Face detection is most of a photo's time and, for MTCNN, many small ONNX Runtime calls that leave a core
        idle between them; two photos at once kept both cores busy (120 APPA-REAL photos: 37-44 -> 52-55
        photos/s, benchmarks/results/detectors.md has the pipeline figures). Only detectors marked
        ``thread_safe`` run concurrently (OpenCV's dnn and cascade objects keep per-call state).
        """
        workers = min(self.workers, len(images))
        parallel = detect and workers > 1 and getattr(self.detector, "thread_safe", False)
        if not parallel:
            return [self._prepare(image, detect, rule) for image in images]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda image: self._prepare(image, detect, rule), images))

    def predict(self, image: Any, detect: bool = True, quality_filter: QualityFilter | None = None) -> list[FaceResult]:
        """Faces in one image (path, bytes, PIL image, RGB array or :class:`~agegender.data.images.ScaledImage`,
        whose faces are reported in the photo's pixels); ``detect=False``: image is a face crop.

        ``quality_filter`` overrides the predictor's ``min_face`` / ``min_quality`` for this call. An unreadable
        image raises :class:`~agegender.data.images.ImageError` (``predict_batch`` reports it per input instead).
        """
        if isinstance(image, list | tuple):
            raise TypeError(f"predict takes one image, got a {type(image).__name__}: use predict_batch(images)")
        check_input_type(image)
        faces, error = split_error(self.predict_batch([image], detect=detect, quality_filter=quality_filter)[0])
        if error:
            raise ImageError(error)
        return faces

    def predict_batch(
        self,
        images: Iterable[Any],
        detect: bool = True,
        batch_size: int = 64,
        quality_filter: QualityFilter | None = None,
    ) -> list[list[FaceResult]]:
        """Like :meth:`predict` for many images, one list per input, in order; face crops from all images share
        batches. An input that cannot be read does not stop the others: its list is the single entry
        ``FaceResult(status="error", message=why)`` (no estimate, ``age`` None); so does an input that is no
        image at all (None, a number). A note about the decode (``first of 3 frames used``: multi-page TIFF,
        animated GIF) ends each of that image's faces' ``message``. ``images`` may be any iterable (a generator
        too); one image given where many are expected raises ``TypeError``.
        """
        if isinstance(images, str | bytes | bytearray | Path) or (isinstance(images, np.ndarray) and images.ndim < 4):
            raise TypeError(f"predict_batch takes a sequence of images, got one {type(images).__name__}: use predict")
        if not isinstance(images, Sequence):
            images = list(images)
        rule = quality_filter or self.quality_filter
        crops: list[np.ndarray] = []
        owners: list[dict[str, Any]] = []
        results: list[list[FaceResult | None]] = []
        for prepared in self._prepare_all(images, detect, rule):
            if isinstance(prepared, str):
                results.append([FaceResult(status="error", message=prepared)])
                continue
            arr, faces, notes = prepared
            if faces is None:  # detect=False: the whole image is the face, nothing was measured or flagged
                crops.append(arr)
                owners.append({"scale": interval_scale(self.config), "message": "; ".join(notes)})
                results.append([None])
                continue
            slots: list[FaceResult | None] = []
            for face in faces:
                det = face.detection
                where = {
                    "box": [round(float(v), 1) for v in det.box],
                    "score": round(float(det.score), 4),
                    "landmarks": None if det.landmarks is None else np.round(det.landmarks.astype(float), 1).tolist(),
                    "reasons": face.reasons,
                    "quality": face.quality,
                    "message": "; ".join(filter(None, [face.message, *notes])),
                }
                if face.estimate:
                    crops.append(face.crop)
                    owners.append({"scale": interval_scale(self.config, face.reasons), **where})
                    slots.append(None)
                else:
                    slots.append(FaceResult(status=face.status, **where))
            results.append(slots)
        age, std, pf = predict_crops(self.engine, crops, batch_size, self.tta)
        filled = iter(_result(a, s, p, **where) for where, a, s, p in zip(owners, age, std, pf, strict=True))
        return [[slot if slot is not None else next(filled) for slot in slots] for slots in results]
