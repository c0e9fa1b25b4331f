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


def face_label(index: int, face: FaceResult) -> str:
    """``"1: F, 34 ± 4"``, ``"2: M, 40 ± 9?"`` for a low-quality face, ``"3: skipped"`` without an estimate."""
    return f"{index}: {face.label}"


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


def annotate(
    image: np.ndarray | Image.Image, faces: Sequence[FaceResult], max_side: int = MAX_DISPLAY_SIDE
) -> Image.Image:
    """A copy of ``image`` (scaled to at most ``max_side``) with a numbered box and label per face."""
    img = image.copy() if isinstance(image, Image.Image) else Image.fromarray(image)
    img = img.convert("RGB")
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    draw = ImageDraw.Draw(img)
    side = max(img.size)
    width = max(2, round(side / 250))
    font = _font(max(12, round(side / 26)))
    for i, face in enumerate(faces, start=1):
        if face.box is None:
            continue
        x1, y1, x2, y2 = (v * scale for v in face.box)
        color = face_color(face)
        if face.status == "low_quality":
            _dashed_rectangle(draw, (x1, y1, x2, y2), color, width)
        else:
            draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
        text = face_label(i, face)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        pad = max(2, th // 4)
        # Above the box when there is room, else inside its top edge.
        ty = y1 - th - 2 * pad if y1 - th - 2 * pad >= 0 else y1
        tx = min(max(0.0, x1), max(0.0, img.width - tw - 2 * pad))
        draw.rectangle((tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad), fill=color)
        draw.text((tx + pad - left, ty + pad - top), text, fill=(255, 255, 255), font=font)
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
