"""Draw predictions onto the photo and lay them out as table rows, for the web UI.

Faces are numbered in the drawing and in the table so the two can be matched; colour tells gender at a
glance, an amber dashed box (label ending in "?") marks a low-quality face whose estimate is less reliable,
and grey marks faces that were found but skipped (not estimated) by the user's min_face / min_quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from agegender.inference.predictor import FaceResult

COLORS = {"female": (214, 39, 140), "male": (31, 119, 220), "low_quality": (230, 145, 0), None: (150, 150, 150)}
TABLE_HEADERS = ["#", "age", "80% interval", "gender", "P(gender)", "quality", "status"]
#: Longer side of the returned drawing: big photos are shrunk so the page stays light.
MAX_DISPLAY_SIDE = 1280


def face_color(face: FaceResult) -> tuple[int, int, int]:
    """Gender colour for ok faces, amber for low-quality ones, grey for faces without an estimate."""
    if face.age is None:
        return COLORS[None]
    if face.status == "low_quality":
        return COLORS["low_quality"]
    return COLORS.get(face.gender, COLORS[None])


def face_label(index: int, face: FaceResult, short: bool = False) -> str:
    """``"1: F, 34 (29-39)"``, ``"2: M, 40 (31-49)?"`` for a low-quality face, ``"3: skipped"`` without one;
    ``short``: without the interval (``"1: F, 34"``), for faces too small to carry the whole label.

    A plain hyphen in the interval: Pillow's bundled font has no en dash and drew a box in its place.
    """
    return f"{index}: {face.describe(interval=not short)}".replace("\u2013", "-")


Color = tuple[int, int, int]


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box: tuple[float, ...], color: Color, width: int) -> None:
    """A dashed outline: tells flagged faces apart without relying on colour alone."""
    x1, y1, x2, y2 = box
    dash = 3 * width
    for a, b, fixed, horizontal in ((x1, x2, y1, True), (x1, x2, y2, True), (y1, y2, x1, False), (y1, y2, x2, False)):
        start = a
        while start < b:
            end = min(start + dash, b)
            xy = (start, fixed, end, fixed) if horizontal else (fixed, start, fixed, end)
            draw.line(xy, fill=color, width=width)
            start += 2 * dash


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # bundled with Pillow: nothing to install or download


Rect = tuple[float, float, float, float]


def _clipped(box: Sequence[float], scale: float, w: int, h: int) -> Rect:
    """A face box in drawing pixels, clipped to the image (detections may reach past the photo's edge)."""
    x1, y1, x2, y2 = (v * scale for v in box)
    return (
        min(max(x1, 0.0), w - 1.0),
        min(max(y1, 0.0), h - 1.0),
        min(max(x2, 0.0), w - 1.0),
        min(max(y2, 0.0), h - 1.0),
    )


def _overlap(a: Rect, b: Rect) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _place_label(box: Rect, size: tuple[float, float], image: tuple[int, int], others: Sequence[Rect]) -> Rect:
    """Where a face's label goes: above its box, else below, else inside its top edge, shifted left or right
    along the box, whichever covers the least of the other faces and labels (crowded group photos)."""
    (tw, th), (w, h) = size, image
    x1, y1, x2, y2 = box
    candidates = []
    for ty in (y1 - th, y2, y1):
        for tx in (x1, x2 - tw, (x1 + x2 - tw) / 2):
            tx, ty_ = min(max(0.0, tx), max(0.0, w - tw)), min(max(0.0, ty), max(0.0, h - th))
            candidates.append((tx, ty_, tx + tw, ty_ + th))
    # Stable: the first candidate (above, left-aligned) wins among equally good ones.
    return min(candidates, key=lambda c: sum(_overlap(c, o) for o in others))


def annotate(
    image: np.ndarray | Image.Image,
    faces: Sequence[FaceResult],
    max_side: int = MAX_DISPLAY_SIDE,
    image_scale: float = 1.0,
) -> Image.Image:
    """A copy of ``image`` (scaled to at most ``max_side``) with a numbered box and label per face.

    ``image_scale``: photo pixels per pixel of ``image`` (a reduced decode); face boxes are in photo pixels.
    """
    img = image.copy() if isinstance(image, Image.Image) else Image.fromarray(image)
    img = img.convert("RGB")
    shrink = min(1.0, max_side / max(img.size))
    if shrink < 1.0:
        img = img.resize((max(1, round(img.width * shrink)), max(1, round(img.height * shrink))), Image.LANCZOS)
    scale = shrink / image_scale  # photo pixels -> drawing pixels
    draw = ImageDraw.Draw(img)
    side = max(img.size)
    w, h = img.size
    boxes = [_clipped(f.box, scale, w, h) if f.box is not None else None for f in faces]
    taken: list[tuple[float, float, float, float]] = [b for b in boxes if b is not None]
    # text and lines in proportion to the faces, so a class photo's labels do not bury its faces
    face_side = float(np.median([max(b[2] - b[0], b[3] - b[1]) for b in taken])) if taken else side
    width = max(1, min(round(side / 250), round(face_side / 25)))
    font = _font(max(12, min(round(side / 26), round(face_side / 3))))
    for i, (face, box) in enumerate(zip(faces, boxes, strict=True), start=1):
        if box is None:
            continue
        color = face_color(face)
        if face.status == "low_quality":
            _dashed_rectangle(draw, box, color, width)
        else:
            draw.rectangle(box, outline=color, width=width)
        text = face_label(i, face)
        if draw.textlength(text, font=font) > 2 * (box[2] - box[0]):  # much wider than its face
            text = face_label(i, face, short=True)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        pad = max(2, (bottom - top) // 4)
        size = (right - left + 2 * pad, bottom - top + 2 * pad)
        tag = _place_label(box, size, (w, h), [b for b in taken if b != box])
        taken.append(tag)
        draw.rectangle(tag, fill=color)
        draw.text((tag[0] + pad - left, tag[1] + pad - top), text, fill=(255, 255, 255), font=font)
    return img


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def _status(face: FaceResult) -> str:
    """Short enough for a table cell: the full reason is in the JSON ``message``."""
    text = face.status.replace("_", " ")
    if face.reasons:
        text += ": " + ", ".join(face.reasons)
    if "small" in face.reasons and face.box is not None:
        text += f" ({face.box[2] - face.box[0]:.0f}×{face.box[3] - face.box[1]:.0f} px)"
    return text


def table_rows(faces: Sequence[FaceResult]) -> list[list[str | int]]:
    """One row per face, in :data:`TABLE_HEADERS` order."""
    rows: list[list[str | int]] = []
    for i, f in enumerate(faces, start=1):
        estimated = f.age is not None
        interval = f"{_num(f.age_low)}–{_num(f.age_high)}" if estimated and f.age_low is not None else "–"
        rows.append(
            [
                i,
                _num(f.age) if estimated else "–",
                interval,
                f.gender or "–",
                f"{f.gender_probability:.0%}" if estimated and f.gender_probability is not None else "–",
                _num(f.quality, 2),
                _status(f),
            ]
        )
    return rows


def summary_message(faces: Sequence[FaceResult]) -> str:
    """The one line shown above the table (and returned by the API): what was found, what is less reliable."""
    if not faces:
        return (
            "No face found. Use a photo where faces are clearly visible, roughly frontal and at least "
            "about 40 pixels wide."
        )
    parts = [f"{len(faces)} face{'s' if len(faces) != 1 else ''} found"]
    low = [f for f in faces if f.status == "low_quality"]
    if low:
        reasons = list(dict.fromkeys(r for f in low for r in f.reasons))
        parts.append(f"{len(low)} low quality ({', '.join(reasons)}; amber, less reliable)")
    skipped = sum(f.status == "skipped" for f in faces)
    if skipped:
        parts.append(f"{skipped} skipped by the minimum size or quality (grey, not estimated)")
    return "; ".join(parts) + "."
