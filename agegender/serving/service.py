"""The serving core: one loaded predictor behind the limits, used by both the JSON API and the web UI.

Keeping validation, decoding and inference here means the API and the UI refuse the same inputs with the
same messages, and share one bounded thread pool so neither can starve the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agegender import __version__
from agegender.data.images import ImageError, decode_scaled
from agegender.face_filter import QualityFilter
from agegender.inference.predictor import FaceResult, Predictor
from agegender.models.folder import DEFAULT_MODEL_DIR
from agegender.serving.drawing import summary_message
from agegender.serving.limits import InferencePool, NotAnImage, ServeLimits, check_pixels, check_upload_size
from agegender.serving.memory import MemoryTrimmer


@dataclass
class Prediction:
    """Everything one request produced; ``image`` (the decoded RGB array) stays server-side.

    ``width`` x ``height`` is the photo, in whose pixels the faces are; ``image`` may be smaller (a large photo
    is decoded at reduced size): each of its pixels covers ``image_scale`` photo pixels.
    """

    faces: list[FaceResult]
    width: int
    height: int
    seconds: float
    image: np.ndarray | None = field(default=None, repr=False)
    notes: list[str] = field(default_factory=list)  # about the decode: "first of 3 frames used"
    image_scale: int = 1

    @property
    def message(self) -> str:
        return " ".join([summary_message(self.faces), *(f"Note: {n}." for n in self.notes)])


def _model_name(model_path: str | Path | None) -> str:
    """``default``, or the folder name; ``run/model`` for training output, whose folders are all ``model``."""
    if model_path is None:
        return "default"
    path = Path(model_path)
    return f"{path.parent.name}/{path.name}" if path.name == "model" and path.parent.name else path.name


def model_info(predictor: Predictor, model_path: str | Path | None = None) -> dict[str, Any]:
    """What the API reports as ``model``: enough to tell which model answered, without server paths."""
    cfg = predictor.config or {}
    model = cfg.get("model", {})
    training = cfg.get("training") or {}
    recipe = training.get("recipe") or {}
    detector = getattr(predictor.detector, "name", type(predictor.detector).__name__)
    info: dict[str, Any] = {
        "name": _model_name(model_path),
        "backbone": model.get("backbone"),
        "input_size": (cfg.get("preprocessing") or {}).get("input_size") or model.get("input_size"),
        "age_head": model.get("age_head"),
        "age_range": (cfg.get("labels") or {}).get("age_range"),
        "gender_head": model.get("gender_head"),
        "engine": getattr(predictor.engine, "name", type(predictor.engine).__name__),
        "detector": detector,
        "recipe": recipe.get("name") if isinstance(recipe, dict) else None,
        "agegender_version": __version__,
    }
    for key in ("metrics", "evaluation"):
        if isinstance(cfg.get(key), dict):
            info[key] = cfg[key]
    info["calibrated"] = bool((cfg.get("calibration") or {}).get("interval_scale"))
    return info


def model_description(info: dict[str, Any]) -> str:
    """A few Markdown lines about the model, for the page."""
    lo, hi = (info.get("age_range") or [0, 100])[:2]
    head = (
        f"a distribution over ages {lo}–{hi}, so each estimate comes with an uncertainty"
        if info.get("age_head") == "distribution"
        else "a direct age regression"
    )
    lines = [
        f"**Model:** `{info.get('name')}` — backbone `{info.get('backbone')}` at {info.get('input_size')} px, "
        f"age head: {head}; gender head: `{info.get('gender_head')}`. Engine `{info.get('engine')}`, "
        f"face detector `{info.get('detector')}`.",
    ]
    if info.get("recipe"):
        lines.append(f"Trained with recipe `{info['recipe']}`.")
    metrics = info.get("metrics") or info.get("evaluation")
    if isinstance(metrics, dict):
        shown = ", ".join(f"{k} = {v:.3g}" for k, v in metrics.items() if isinstance(v, int | float))
        if shown:
            lines.append(f"Test metrics: {shown}.")
    lines.append(
        "Ages are shown as *estimate (80% interval)*: the true age falls in the interval for about 8 faces "
        "in 10. P(gender) is the model's probability for the gender shown. Faces are first "
        "detected and aligned, and every face is estimated. Faces that are small, blurry, uncertainly "
        "detected or turned away are marked *low quality* (amber dashed box, label ending in “?”, the "
        "reason in the table): their estimate is less reliable"
        + (", and their interval is set by the model's calibration for such faces." if info.get("calibrated") else ".")
        + " Set a minimum face size or quality under *Options* to skip such faces (drawn in grey, "
        "not estimated)."
    )
    return "\n\n".join(lines)


class Service:
    """A predictor plus limits plus a bounded pool: the only object the app layers talk to."""

    def __init__(
        self, predictor: Predictor, limits: ServeLimits | None = None, model_path: str | Path | None = None
    ) -> None:
        self.predictor = predictor
        self.limits = limits or ServeLimits()
        self.pool = InferencePool(self.limits)
        self.trimmer = MemoryTrimmer()
        self.demo = "off"  # the web page beside the API: loading | ready | failed | off (set by the app)
        self.info = model_info(predictor, model_path)
        self.model_dir = Path(model_path) if model_path is not None else DEFAULT_MODEL_DIR  # its card, for the page
        self.started = time.time()

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        limits: ServeLimits | None = None,
        detector: str = "auto",
        backend: str = "auto",
        threads: int | None = None,
        warmup: bool = True,
    ) -> Service:
        """Load the model and, with ``warmup``, run it once so the first user does not pay for lazy setup."""
        predictor = Predictor.load(model, backend=backend, detector=detector, threads=threads)
        service = cls(predictor, limits, model)
        if warmup:
            service.warmup()
        return service

    def warmup(self) -> None:
        # Creates the detector and runs detector + network once: lazy initialisation must not race in threads.
        self.predictor.predict(np.full((64, 64, 3), 127, np.uint8))
        self.predictor.predict(np.full((64, 64, 3), 127, np.uint8), detect=False)

    def _predict_sync(self, data: bytes, name: str, keep_image: bool, options: QualityFilter | None) -> Prediction:
        start = time.perf_counter()
        notes: list[str] = []
        try:
            photo = decode_scaled(data, name, notes)  # a huge photo is decoded at 1/2, 1/4 or 1/8 of its size
        except ImageError as e:
            raise NotAnImage(str(e)) from None
        faces = self.predictor.predict(photo, quality_filter=options)
        seconds = time.perf_counter() - start
        image = photo.pixels if keep_image else None
        return Prediction(faces, photo.width, photo.height, seconds, image, notes, photo.scale)

    def _predict_and_trim(
        self, data: bytes, name: str, keep_image: bool, options: QualityFilter | None, pixels: int
    ) -> Prediction:
        try:
            return self._predict_sync(data, name, keep_image, options)
        finally:  # the request's arrays are freed by now: hand their pages back
            self.trimmer.after_request(pixels)

    async def predict_bytes(
        self, data: bytes, name: str = "upload", keep_image: bool = False, options: QualityFilter | None = None
    ) -> Prediction:
        """Validate, decode and predict off the event loop; raises :class:`ServingError` subclasses.

        ``options``: this request's ``min_face`` / ``min_quality`` (default: the predictor's, which keep all).
        """
        check_upload_size(len(data), self.limits)
        width, height = check_pixels(data, self.limits)  # header only: refuse oversized images before queueing
        return await self.pool.run(self._predict_and_trim, data, name, keep_image, options, width * height)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "demo": self.demo,
            "model": self.info,
            "uptime_s": round(time.time() - self.started, 1),
            "pending": self.pool.pending,
            "limits": self.limits.to_dict(),
        }

    def close(self) -> None:
        self.pool.shutdown()
