"""Robust image decoding: every odd file users have (grayscale, RGBA, 16-bit, CMYK, EXIF-rotated) becomes RGB uint8."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, features

from agegender.errors import AgeGenderError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def _pillow_reads_avif() -> bool:
    try:
        return bool(features.check("avif"))  # Pillow >= 11.3 built with libavif
    except Exception:  # older Pillow: an unknown feature name
        return False


if _pillow_reads_avif():
    IMAGE_EXTENSIONS.add(".avif")

#: Image formats people have that folder reads skip, with why and what to do (checked: pillow-heif is not a
#: dependency, so HEIC is skipped and said so, rather than read by an optional plugin).
_UNSUPPORTED_IMAGES = {
    ".heic": ("heic", "HEIC/HEIF is not supported: Pillow needs the pillow-heif plugin; convert to JPEG or PNG"),
    ".heif": ("heic", "HEIC/HEIF is not supported: Pillow needs the pillow-heif plugin; convert to JPEG or PNG"),
    ".avif": ("avif", "this Pillow cannot read AVIF (Pillow >= 11.3 with AVIF can); convert to JPEG or PNG"),
    ".jxl": ("jpeg_xl", "JPEG XL is not supported: convert to JPEG or PNG"),
    **{
        ext: ("camera_raw", "camera RAW files are not supported: export them as JPEG or PNG")
        for ext in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf")
    },
}
#: Refuse images above this many pixels: a decompression bomb would otherwise exhaust memory.
MAX_PIXELS = 80_000_000
#: Refuse files above this size before reading them: no photo is this large, and reading one would take the memory.
MAX_FILE_BYTES = 512 * 1024 * 1024
#: :func:`decode_scaled` keeps at least this many pixels on the long side: above the detectors' search size
#: (``MAX_SIDE``, 1600), so a reduced decode finds the same faces; a 12 MP phone photo (4000 px) is not reduced.
WORK_SIDE = 2048
#: Reduction factors JPEG can decode at directly (DCT scaling), largest first.
_FACTORS = (8, 4, 2)


class ImageError(AgeGenderError, ValueError):
    """An image that cannot be used; the message says why, for the per-file status."""


class UnsupportedInputError(ImageError, TypeError):
    """Something that is no image at all (None, a number, a list): a ``TypeError`` too, so ``predict`` raises what
    Python code expects, while ``predict_batch`` reports it for that input and goes on with the others."""


def skipped_file_kind(path: Path) -> tuple[str, str]:
    """``(kind, why)`` for a file a folder read leaves out because of its extension, so the skip is reported."""
    kind, why = _UNSUPPORTED_IMAGES.get(
        path.suffix.lower(), ("other_file", "not an image extension: " + " ".join(sorted(IMAGE_EXTENSIONS)))
    )
    return f"skipped_{kind}", why


def digest_bytes(data: bytes) -> str:
    """Content hash used for duplicate detection and deterministic splits."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _open(data: bytes, name: str) -> Image.Image:
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: image too large ({e})") from None
    except Exception as e:  # PIL raises many types for garbage input
        raise ImageError(f"{name}: not a readable image ({type(e).__name__})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name}: image too large ({w}x{h} > {MAX_PIXELS} pixels)")
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    # Each step copies only when it changes something: exif_transpose and convert("RGB") both return a full
    # copy even when there is nothing to do, which for a 6000x6000 upload is 108 MB each.
    if img.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        img = ImageOps.exif_transpose(img) or img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit data maps 0..65535 onto 0..255; 8-bit data stored in a wider mode stays as it is.
        scale = 257.0 if arr.size and arr.max() > 255 else 1.0
        img = Image.fromarray((arr / scale).clip(0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img if img.mode == "RGB" else img.convert("RGB")


def frame_note(img: Image.Image) -> str:
    """ "first of N frames used" for a multi-page TIFF or an animated GIF/WebP, whose other frames Pillow would
    leave out silently; "" for a still image."""
    frames = getattr(img, "n_frames", 1)
    return f"first of {frames} frames used" if frames > 1 else ""


def _note(img: Image.Image, notes: list[str] | None) -> None:
    if notes is not None and (note := frame_note(img)):
        notes.append(note)


def decode_image(data: bytes, name: str = "image", notes: list[str] | None = None) -> np.ndarray:
    """Decode bytes to an RGB uint8 array (H, W, 3), or raise :class:`ImageError` with a clear message.

    ``notes``, when given, receives what the caller should report about the decode (``first of 3 frames used``).
    """
    img = _open(data, name)
    _note(img, notes)
    return _pixels(img, name)


def _pixels(img: Image.Image, name: str, factor: int = 1, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an opened image to RGB uint8, reduced by ``factor`` (JPEG: in the decoder) from photo ``size``."""
    try:
        if factor > 1 and img.format == "JPEG":
            img.draft(img.mode, (img.width // factor, img.height // factor))
        rgb = _to_rgb(img)
        if factor > 1 and rgb.size == size:  # not a JPEG: reduce after decoding
            rgb = rgb.reduce(factor)
        arr = np.asarray(rgb, dtype=np.uint8)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"{name}: could not decode image ({type(e).__name__}: {e})") from None
    if min(arr.shape[:2]) < 1:
        raise ImageError(f"{name}: image has no pixels")
    return arr


@dataclass(frozen=True)
class ScaledImage:
    """A photo decoded at reduced size: ``pixels`` (RGB uint8) stand for a ``width`` x ``height`` photo, each
    pixel covering ``scale`` x ``scale`` photo pixels. Results are reported in photo pixels."""

    pixels: np.ndarray
    width: int
    height: int
    scale: int = 1


def reduction_factor(width: int, height: int, work_side: int = WORK_SIDE) -> int:
    """The largest of 8, 4, 2 that keeps the long side at least ``work_side``, else 1 (no reduction)."""
    long_side = max(width, height)
    return next((f for f in _FACTORS if long_side // f >= work_side), 1)


def decode_scaled(
    data: bytes, name: str = "image", notes: list[str] | None = None, work_side: int = WORK_SIDE
) -> ScaledImage:
    """:func:`decode_image` for photos much larger than needed: decoded at 1/2, 1/4 or 1/8 (see
    :func:`reduction_factor`). A JPEG is decoded directly at that size (draft mode), so a 6000x6000 upload
    never takes its 108 MB at full size; other formats are decoded, then reduced with a box filter."""
    img = _open(data, name)
    _note(img, notes)
    width, height = img.size
    if img.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8):  # exif_transpose turns it by 90 degrees
        width, height = height, width
    factor = reduction_factor(width, height, work_side)
    return ScaledImage(_pixels(img, name, factor, (width, height)), width, height, factor)


def check_image(data: bytes, name: str = "image") -> tuple[int, int]:
    """Cheap validity check used while reading datasets: JPEGs decode at reduced scale (draft mode)."""
    img = _open(data, name)
    try:
        img.draft("RGB", (64, 64))
        img.load()
    except Exception as e:
        raise ImageError(f"{name}: could not decode image ({type(e).__name__})") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{name}: image has no pixels")
    return w, h


def _array_image(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageError(f"array image must be HxW, HxWx3 or HxWx4, got shape {arr.shape}")
    if arr.dtype.kind not in "uif":
        raise ImageError(f"array image must hold numbers (uint8, uint16 or float), got dtype {arr.dtype}")
    if arr.size == 0:
        raise ImageError(f"array image has no pixels (shape {arr.shape})")
    if arr.dtype != np.uint8:
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ImageError("array image holds NaN or infinite values")
        scale = 255.0 if arr.dtype.kind == "f" and arr.max() <= 1.0 else 1.0
        if arr.dtype == np.uint16:
            scale = 255.0 / 65535.0
        arr = (arr.astype(np.float64) * scale).clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


def _read_file(path: Path) -> bytes:
    """The bytes of an image file; a FIFO or a device (which could block or never end) is refused unread."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read file ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{path}: is a directory, not an image")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{path}: not a regular file (a pipe, socket or device), not read")
    if st.st_size > MAX_FILE_BYTES:
        raise ImageError(f"{path}: file too large for an image ({st.st_size / 2**20:.0f} MiB)")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImageError(f"{path}: cannot read file ({e.strerror})") from None


def check_input_type(source: object) -> None:
    """Raise :class:`UnsupportedInputError` unless ``source`` is a kind of thing :func:`load_image` reads."""
    kinds = (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image, ScaledImage)
    if not isinstance(source, kinds) and not hasattr(source, "read"):
        raise UnsupportedInputError(
            f"cannot read an image from {type(source).__name__}: give a path, bytes, a PIL image or an array"
        )


def load_image(source: str | Path | bytes | np.ndarray | Image.Image, notes: list[str] | None = None) -> np.ndarray:
    """Accept a path, raw bytes (or a binary file object), a PIL image or an array and return RGB uint8
    (H, W, 3); ``notes`` as for :func:`decode_image`. Anything else raises :class:`UnsupportedInputError`."""
    if isinstance(source, np.ndarray):
        return _array_image(source)
    if isinstance(source, Image.Image):
        if source.width * source.height > MAX_PIXELS:
            raise ImageError(f"image too large ({source.width}x{source.height})")
        try:  # a lazily opened PIL image decodes here: a truncated or corrupt file fails now, with OSError
            _note(source, notes)
            return np.asarray(_to_rgb(source), dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"image could not be decoded ({type(e).__name__}: {e})") from None
    if isinstance(source, bytes | bytearray | memoryview):
        return decode_image(bytes(source), notes=notes)
    if hasattr(source, "read"):  # an open binary file or io.BytesIO
        data = source.read()
        if not isinstance(data, bytes):
            raise UnsupportedInputError("a file object must be opened in binary mode ('rb')")
        return decode_image(data, str(getattr(source, "name", "image")), notes)
    check_input_type(source)
    path = Path(source)  # type: ignore[arg-type]
    data = _read_file(path)
    try:
        return decode_image(data, str(path), notes)
    except ImageError:
        if path.suffix.lower() in _UNSUPPORTED_IMAGES:  # say why, as a folder read does
            raise ImageError(f"{path}: {_UNSUPPORTED_IMAGES[path.suffix.lower()][1]}") from None
        raise
