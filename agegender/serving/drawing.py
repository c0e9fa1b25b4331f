"""Draw predictions onto the photo and lay them out as table rows, for the web UI.

Faces are numbered in the drawing and in the table so the two can be matched; colour tells gender at a
glance and grey marks faces that were found but not estimated (too small, blurry).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from agegender.inference.predictor import FaceResult

COLORS = {"female": (214, 39, 140), "male": (31, 119, 220), None: (150, 150, 150)}
TABLE_HEADERS = ["#", "age", "80% interval", "gender", "P(gender)", "status"]
#: Longer side of the returned drawing: big photos are shrunk so the page stays light.
MAX_DISPLAY_SIDE = 1280


def face_color(face: FaceResult) -> tuple[int, int, int]:
    return COLORS.get(face.gender if face.status == "ok" else None, COLORS[None])


def face_label(index: int, face: FaceResult) -> str:
    """``"1: F, 34 ± 4"``, or ``"2: too small"`` for a face that was not estimated."""
    return f"{index}: {face.label}"


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
    if face.status == "too_small" and face.box is not None:
        text += f" ({face.box[2] - face.box[0]:.0f}×{face.box[3] - face.box[1]:.0f} px)"
    return text


def table_rows(faces: Sequence[FaceResult]) -> list[list[str | int]]:
    """One row per face, in :data:`TABLE_HEADERS` order."""
    rows: list[list[str | int]] = []
    for i, f in enumerate(faces, start=1):
        ok = f.status == "ok"
        interval = f"{_num(f.age_low)}–{_num(f.age_high)}" if ok and f.age_low is not None else "–"
        rows.append(
            [
                i,
                _num(f.age) if ok else "–",
                interval,
                f.gender or "–",
                f"{f.gender_probability:.0%}" if ok and f.gender_probability is not None else "–",
                _status(f),
            ]
        )
    return rows


def summary_message(faces: Sequence[FaceResult]) -> str:
    """The one line shown above the table (and returned by the API): what was found, what was not usable."""
    if not faces:
        return (
            "No face found. Use a photo where faces are clearly visible, roughly frontal and at least "
            "about 40 pixels wide."
        )
    ok = sum(f.status == "ok" for f in faces)
    parts = [f"{len(faces)} face{'s' if len(faces) != 1 else ''} found"]
    skipped = len(faces) - ok
    if skipped:
        parts.append(f"{skipped} not estimated (too small or blurry, drawn in grey)")
    return "; ".join(parts) + "."
