"""Turn detections into UTKFace-style chips: same framing, eyes level, with quality flags per face.

Models are trained on UTKFace "aligned & cropped" 200x200 chips; a photo crop framed differently (more
background, tilted head) is out of distribution and costs accuracy. So every face is warped with a
similarity transform onto the landmark template measured on UTKFace itself (see ``template.py``), or,
when the detector gives no landmarks, framed from its box with the box-to-chip relation measured the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from agegender.face_filter import QualityFilter
from agegender.faces.detectors import Detection, FaceDetector, as_rgb_uint8, create_detector
from agegender.faces.flags import MIN_FACE_SIZE, FaceFlags, assess

__all__ = [
    "BLUR_THRESHOLD",
    "BOX_FRAMES",
    "UTKFACE_SIZE",
    "UTKFACE_TEMPLATE",
    "FaceCrop",
    "align_face",
    "alignment_matrix",
    "box_matrix",
    "crop_from_box",
    "extract_faces",
    "face_quality",
    "template_landmarks",
]

UTKFACE_SIZE = 200

# All constants below come from one run on UTKFace itself:
#   python -m agegender.faces.template --images /work/shared/data/utkface/images --n 500 \
#       --yunet-model face_detection_yunet_2026may.onnx
# (500 chips sampled with seed 0, each padded with 50 black pixels before detection).

# Landmarks (left eye, right eye, nose, mouth left, mouth right; image-left first) in a 200x200 chip:
# median MTCNN landmarks on 498 of the 500 chips (median absolute deviation 1.8-2.3 px for the eyes,
# 3.4-4.4 px for nose and mouth). Eyes are level and the face is centred (eye midpoint x = 98.9).
UTKFACE_TEMPLATE = np.array(
    [
        [59.2, 58.0],
        [138.5, 58.1],
        [98.2, 104.9],
        [63.6, 138.2],
        [133.9, 138.3],
    ],
    dtype=np.float32,
)
# Chip frame relative to each detector's box: (dx, dy, side) means chip centre = box centre +
# (dx * box width, dy * box height) and chip side = side * sqrt(box width * box height); medians over
# the chips where that detector found the face (mtcnn 498, haar 491, yunet 499 of 500).
BOX_FRAMES: dict[str, tuple[float, float, float]] = {
    "mtcnn": (0.0221, 0.0568, 1.0599),
    "haar": (0.0044, 0.0789, 0.9615),
    "yunet": (0.0062, 0.0651, 1.0444),
}
# The BlazeFace detector reports MTCNN O-net's boxes (see detectors/blazeface.py): MTCNN's frame fits them (the
# template command measures (0.0200, 0.0539, 1.0607) on 499 chips: each within a fifth of the spread of MTCNN's).
BOX_FRAMES["blazeface"] = BOX_FRAMES["mtcnn"]
#: Sharpness (variance of the Laplacian over the inner face of a 200 px chip, see ``face_quality``) below
#: which a face is "blurry": the 5th percentile over the 500 chips, i.e. blurrier than 95% of training faces.
#: For scale: Gaussian blur with sigma 2 px takes the median chip from 47 to 8.
BLUR_THRESHOLD = 11.8


@dataclass
class FaceCrop:
    """One face ready for a model: the chip, where it came from, and how far to trust an estimate from it."""

    crop: np.ndarray
    detection: Detection
    status: str  # "ok", "low_quality" (estimate it, flagged) or "skipped" (dropped by the user's QualityFilter)
    message: str = ""
    measures: dict[str, Any] = field(default_factory=dict, repr=False)  # face_quality() of the chip
    matrix: np.ndarray | None = field(default=None, repr=False)  # 2x3, photo pixels -> chip pixels
    flags: FaceFlags = field(default_factory=FaceFlags)

    @property
    def ok(self) -> bool:
        """Nothing flagged."""
        return self.status == "ok"

    @property
    def estimate(self) -> bool:
        """Whether this face should be estimated: everything the user's filter did not skip."""
        return self.status != "skipped"

    @property
    def reasons(self) -> list[str]:
        return list(self.flags.reasons)

    @property
    def quality(self) -> float:
        return self.flags.quality


# ------------------------------------------------------------------------------------------- geometry


def template_landmarks(size: int = UTKFACE_SIZE) -> np.ndarray:
    """The UTKFace template scaled to a ``size`` x ``size`` chip."""
    return UTKFACE_TEMPLATE * (size / UTKFACE_SIZE)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping ``src`` onto ``dst`` (Umeyama 1991).

    Closed form rather than cv2.estimateAffinePartial2D's robust estimators: with five landmarks and no
    outliers to reject, all points should count, and the result is deterministic.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var < 1e-9:
        raise ValueError("landmarks are degenerate (all at one point)")
    u, s, vt = np.linalg.svd(dst_c.T @ src_c / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])  # no reflections
    rot = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / src_var
    shift = dst_mean - scale * rot @ src_mean
    return np.hstack([scale * rot, shift[:, None]]).astype(np.float32)


def alignment_matrix(landmarks: np.ndarray, size: int = UTKFACE_SIZE) -> np.ndarray:
    """2x3 matrix taking photo pixels to chip pixels so ``landmarks`` (5x2) land on the template."""
    marks = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    return similarity_transform(marks, template_landmarks(size))


def box_matrix(
    box: Sequence[float], size: int = UTKFACE_SIZE, frame: str | tuple[float, float, float] = "haar"
) -> np.ndarray:
    """2x3 matrix (scale + shift, no rotation) framing a detector box the way UTKFace frames the face."""
    dx, dy, side = BOX_FRAMES[frame] if isinstance(frame, str) else frame
    x1, y1, x2, y2 = map(float, box)
    w, h = x2 - x1, y2 - y1
    if w <= 0 or h <= 0:
        raise ValueError(f"empty box {box}")
    cx, cy = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h
    scale = size / (side * np.sqrt(w * h))
    return np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], dtype=np.float32)


def warp_to_chip(image_rgb: np.ndarray, matrix: np.ndarray, size: int = UTKFACE_SIZE) -> np.ndarray:
    """Apply ``matrix``; outside the photo is black, as in UTKFace chips cut at the photo's edge.

    When shrinking a large face, the region is first reduced with area averaging: warpAffine alone
    samples sparsely and aliases (jagged edges, moire) which a model would see as texture.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.75:
        image_rgb, matrix = _preshrink(image_rgb, matrix, size, scale)
    return cv2.warpAffine(
        image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _preshrink(image: np.ndarray, matrix: np.ndarray, size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Area-resize just the source region the chip covers; return it with the adjusted matrix."""
    inv = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64) @ inv[:, :2].T + inv[:, 2]
    h, w = image.shape[:2]
    x0, y0 = (max(int(np.floor(v)) - 2, 0) for v in corners.min(0))
    x1, y1 = min(int(np.ceil(corners[:, 0].max())) + 2, w), min(int(np.ceil(corners[:, 1].max())) + 2, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, matrix
    roi = image[y0:y1, x0:x1]
    small_size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    small = cv2.resize(roi, small_size, interpolation=cv2.INTER_AREA)
    fx, fy = small_size[0] / (x1 - x0), small_size[1] / (y1 - y0)
    # photo point p = (q / f) + origin for a point q of the shrunk region
    lin = matrix[:, :2] @ np.diag([1 / fx, 1 / fy])
    shift = matrix[:, :2] @ np.array([x0, y0]) + matrix[:, 2]
    return small, np.hstack([lin, shift[:, None]])


def align_face(image_rgb: np.ndarray, landmarks: np.ndarray, size: int = UTKFACE_SIZE) -> np.ndarray:
    """``size`` x ``size`` RGB chip with the five landmarks on the UTKFace template (eyes level)."""
    return warp_to_chip(image_rgb, alignment_matrix(landmarks, size), size)


def crop_from_box(
    image_rgb: np.ndarray,
    box: Sequence[float],
    size: int = UTKFACE_SIZE,
    frame: str | tuple[float, float, float] = "haar",
) -> np.ndarray:
    """Chip framed from a box alone (no landmarks, so no rotation correction); ``frame`` names the detector."""
    return warp_to_chip(image_rgb, box_matrix(box, size, frame), size)


# -------------------------------------------------------------------------------------------- quality


def _inner_face(gray: np.ndarray) -> np.ndarray:
    """Eyes-to-mouth region of a chip: background and hair can be sharp while the face itself is not."""
    size = gray.shape[0]
    lo, hi = template_landmarks(size).min(0), template_landmarks(size).max(0)
    pad = 0.2 * (hi[0] - lo[0])
    x0, y0 = (max(int(v - pad), 0) for v in lo)
    x1, y1 = (min(int(v + pad), size) for v in hi)
    return gray[y0:y1, x0:x1]


def face_quality(crop: np.ndarray, blur_threshold: float = BLUR_THRESHOLD) -> dict[str, Any]:
    """Blur, brightness and contrast of a chip, with flags; measured at 200 px so thresholds hold at any size.

    ``blur`` is the variance of the Laplacian over the inner face (eyes to mouth): low means few edges.
    """
    gray = cv2.cvtColor(np.asarray(crop, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    if gray.shape != (UTKFACE_SIZE, UTKFACE_SIZE):
        shrink = gray.shape[0] > UTKFACE_SIZE
        gray = cv2.resize(
            gray, (UTKFACE_SIZE, UTKFACE_SIZE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    inner = _inner_face(gray)
    blur = float(cv2.Laplacian(inner, cv2.CV_64F).var())
    brightness, contrast = float(inner.mean()), float(inner.std())
    return {
        "blur": blur,
        "brightness": brightness,
        "contrast": contrast,
        "blur_threshold": float(blur_threshold),
        "blurry": blur < blur_threshold,
        # Informative only; well outside UTKFace's 1st-99th percentiles (brightness 66-195, contrast > 18.7).
        "dark": brightness < 40.0,
        "overexposed": brightness > 220.0,
        "low_contrast": contrast < 15.0,
    }


# -------------------------------------------------------------------------------------------- pipeline


def _chip_matrix(detection: Detection, size: int, detector_name: str) -> np.ndarray:
    """Landmark alignment when possible, else the detector's box frame (Haar's for unknown detectors)."""
    if detection.landmarks is not None and np.isfinite(detection.landmarks).all():
        try:
            return alignment_matrix(detection.landmarks, size)
        except ValueError:
            pass
    frame = detector_name if detector_name in BOX_FRAMES else "haar"
    return box_matrix(detection.box, size, frame)


def extract_faces(
    image_rgb: np.ndarray,
    detector: FaceDetector | str = "auto",
    size: int = UTKFACE_SIZE,
    min_face_size: float = MIN_FACE_SIZE,
    blur_threshold: float = BLUR_THRESHOLD,
    quality_filter: QualityFilter | None = None,
    scale: float = 1.0,
) -> list[FaceCrop]:
    """Every detected face as a UTKFace-style chip, best detection first.

    Faces that are small, blurry, weakly detected or turned get status "low_quality" with their reasons
    (see ``flags.py``); ``min_face_size`` and ``blur_threshold`` set what counts as small and blurry. Faces
    that ``quality_filter`` drops are kept with status "skipped" and a message, never silently removed.
    Faces below the detector's own ``min_face_size`` (20 px by default) are not found at all. Pass a
    detector instance when calling repeatedly: a name builds a new detector each time.

    ``scale``: photo pixels per pixel of ``image_rgb``, for a photo decoded at reduced size
    (:class:`~agegender.data.images.ScaledImage`). Chips are cut from ``image_rgb``, but detections, the
    "small" flag, ``min_face`` and messages are in photo pixels, and ``matrix`` maps photo pixels to the chip.
    """
    if isinstance(detector, str):
        detector = create_detector(detector)
    image = as_rgb_uint8(image_rgb)
    name = getattr(detector, "name", "")
    to_image = np.diag([1.0 / scale, 1.0 / scale, 1.0])  # photo pixels -> image pixels (homogeneous)
    faces = []
    for found in detector.detect(image, scale) if scale != 1.0 else detector.detect(image):
        matrix = _chip_matrix(found, size, name)
        crop = warp_to_chip(image, matrix, size)
        measures = face_quality(crop, blur_threshold)
        det = found.scaled(scale) if scale != 1.0 else found
        if scale != 1.0:
            matrix = (matrix.astype(np.float64) @ to_image).astype(np.float32)
        flags = assess(det, measures, name, min_face_size)
        skip = quality_filter.skip_message(det, flags) if quality_filter is not None else None
        status = "skipped" if skip else "low_quality" if flags.reasons else "ok"
        faces.append(FaceCrop(crop, det, status, skip or flags.message, measures, matrix, flags))
    return faces
