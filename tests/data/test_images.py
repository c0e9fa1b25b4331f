"""Image decoding: odd modes become RGB uint8, EXIF rotation applied, every input kind, clear errors."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agegender.data.images import (
    ImageError,
    UnsupportedInputError,
    check_image,
    decode_image,
    decode_scaled,
    digest_bytes,
    load_image,
    reduction_factor,
)


def _encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _check_rgb(arr: np.ndarray, shape: tuple[int, int]) -> None:
    assert arr.dtype == np.uint8
    assert arr.shape == (*shape, 3)


def test_grayscale() -> None:
    gray = np.full((6, 9), 77, np.uint8)
    gray[0, 0] = 200
    out = decode_image(_encode(Image.fromarray(gray, "L")))
    _check_rgb(out, (6, 9))
    assert out[1, 1].tolist() == [77, 77, 77]
    assert out[0, 0].tolist() == [200, 200, 200]


def test_rgba_composited_on_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent: white background
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black: mid grey
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA")))
    _check_rgb(out, (4, 4))
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[0, 1].tolist() == [255, 255, 255]
    assert np.all(np.abs(out[0, 2].astype(int) - 127) <= 2)


def test_la_composited() -> None:
    la = Image.merge("LA", (Image.new("L", (3, 3), 10), Image.new("L", (3, 3), 0)))
    out = decode_image(_encode(la))
    assert out[1, 1].tolist() == [255, 255, 255]


def test_16bit_png_scaled_to_uint8() -> None:
    arr = np.array([[0, 32768, 65535, 1000]], dtype=np.uint16)
    data = _encode(Image.fromarray(arr))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # really a 16-bit image
    out = decode_image(data)
    _check_rgb(out, (1, 4))
    assert out[0, 0, 0] == 0
    assert out[0, 2, 0] == 255
    assert abs(int(out[0, 1, 0]) - 127.5) <= 1  # half of full scale
    assert abs(int(out[0, 3, 0]) - 1000 / 65535 * 255) <= 1
    assert np.all(out[..., 0] == out[..., 2])


def test_cmyk_jpeg() -> None:
    data = _encode(Image.new("CMYK", (10, 6), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = decode_image(data)
    _check_rgb(out, (6, 10))
    r, g, b = out[3, 5].astype(int)
    assert r > 230 and g < 30 and b < 30  # cyan 0, magenta and yellow full: red


def test_exif_orientation_applied() -> None:
    pixels = np.zeros((10, 20, 3), np.uint8)
    pixels[:, :4] = 255  # a white band on the left of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: display rotated 90 degrees clockwise
    data = _encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    out = decode_image(data)
    _check_rgb(out, (20, 10))  # rotated: height and width swapped
    assert out[:3].mean() > 200  # the left band is now on top
    assert out[-10:].mean() < 30
    assert check_image(data) == (20, 10)  # the cheap check reports the stored size


def test_palette_png() -> None:
    pal = Image.new("P", (5, 3), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * (256 * 3 - 6))
    out = decode_image(_encode(pal))
    _check_rgb(out, (3, 5))
    assert out[1, 1].tolist() == [10, 200, 30]


def test_palette_png_with_transparency() -> None:
    pal = Image.new("P", (5, 3), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * (256 * 3 - 6))
    out = decode_image(_encode(pal, transparency=1))
    assert out[1, 1].tolist() == [255, 255, 255]


# ---------------------------------------------------------------- load_image


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)


def test_load_image_path_and_bytes(tmp_path: Path, rgb: np.ndarray) -> None:
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    for source in (path, str(path), path.read_bytes(), bytearray(path.read_bytes())):
        assert np.array_equal(load_image(source), rgb)


def test_load_image_pil(rgb: np.ndarray) -> None:
    assert np.array_equal(load_image(Image.fromarray(rgb)), rgb)
    out = load_image(Image.new("L", (3, 2), 9))
    _check_rgb(out, (2, 3))
    assert out.max() == 9 and out.min() == 9
    assert load_image(Image.new("RGBA", (2, 2), (0, 0, 0, 0)))[0, 0].tolist() == [255, 255, 255]


def test_load_image_numpy(rgb: np.ndarray) -> None:
    out = load_image(rgb)
    assert np.array_equal(out, rgb) and out.dtype == np.uint8
    floats = np.zeros((2, 2, 3), np.float32)
    floats[0, 0] = (1.0, 0.5, 0.0)
    out = load_image(floats)
    assert out.dtype == np.uint8 and out[0, 0].tolist() == [255, 127, 0]
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = load_image(gray)
    _check_rgb(out, (3, 4))
    assert all(np.array_equal(out[..., c], gray) for c in range(3))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    out = load_image(rgba)
    assert out.shape == (7, 5, 3) and np.array_equal(out, rgb) and out.flags.c_contiguous
    out = load_image(np.full((2, 2, 3), 65535, np.uint16))
    assert out.dtype == np.uint8 and out.max() == 255


def test_load_image_numpy_bad_shape() -> None:
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((2, 4, 4, 3), np.uint8))


@pytest.mark.parametrize(
    ("array", "why"),
    [
        (np.zeros((4, 4, 3), bool), "must hold numbers"),
        (np.zeros((0, 0, 3), np.uint8), "no pixels"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN or infinite"),
    ],
)
def test_load_image_numpy_without_usable_pixels_says_why(array: np.ndarray, why: str) -> None:
    with pytest.raises(ImageError, match=why):
        load_image(array)


# ---------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="file not found") as err:
        load_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(err.value)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="is a directory"):
        load_image(tmp_path)


def test_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(b"this is plain text, not an image")
    path = tmp_path / "fake.jpg"
    path.write_bytes(np.random.default_rng(1).bytes(500))
    with pytest.raises(ImageError, match="fake.jpg: not a readable image"):
        load_image(path)
    with pytest.raises(ImageError, match="empty file"):
        load_image(b"")
    assert issubclass(ImageError, ValueError)


def test_what_is_no_image_at_all_is_a_type_error_too() -> None:
    for wrong in (None, 5, [b"x"]):
        with pytest.raises(UnsupportedInputError, match="give a path, bytes"):
            load_image(wrong)  # type: ignore[arg-type]
    assert issubclass(UnsupportedInputError, ImageError) and issubclass(UnsupportedInputError, TypeError)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_device_is_refused_unread(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # reading it would block forever
    with pytest.raises(ImageError, match="not a regular file"):
        load_image(fifo)
    if Path("/dev/zero").exists():  # reading it would never end
        with pytest.raises(ImageError, match="not a regular file"):
            load_image("/dev/zero")


def test_an_unsupported_format_given_by_name_says_why_as_a_folder_read_does(tmp_path: Path) -> None:
    fake = tmp_path / "photo.heic"
    fake.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(40))
    with pytest.raises(ImageError, match="photo.heic: HEIC/HEIF is not supported"):
        load_image(fake)


def test_truncated_jpeg() -> None:
    noise = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), "JPEG")
    cut = data[: len(data) // 2]
    with pytest.raises(ImageError, match="could not decode"):
        decode_image(cut)
    with pytest.raises(ImageError, match="could not decode"):
        check_image(cut)


def test_digest_bytes() -> None:
    assert digest_bytes(b"abc") == digest_bytes(b"abc")
    assert digest_bytes(b"abc") != digest_bytes(b"abd")
    assert len(digest_bytes(b"")) == 32


def _frames(fmt: str, n: int) -> bytes:
    """A ``n``-frame GIF or ``n``-page TIFF, each frame a different grey."""
    pages = [Image.new("RGB", (32, 24), (40 * i, 40 * i, 40 * i)) for i in range(n)]
    buf = io.BytesIO()
    pages[0].save(buf, fmt, save_all=True, append_images=pages[1:])
    return buf.getvalue()


@pytest.mark.parametrize("fmt, n", [("GIF", 3), ("TIFF", 2)])
def test_multi_frame_images_say_the_first_frame_was_used(fmt: str, n: int, tmp_path: Path) -> None:
    data = _frames(fmt, n)
    notes: list[str] = []
    arr = decode_image(data, notes=notes)
    assert notes == [f"first of {n} frames used"]
    assert arr.shape == (24, 32, 3) and arr.max() == 0  # the first (black) frame
    path = tmp_path / f"pages.{fmt.lower()}"
    path.write_bytes(data)
    for source in (path, data, Image.open(io.BytesIO(data))):
        notes = []
        load_image(source, notes)
        assert notes == [f"first of {n} frames used"]


def test_single_frame_image_has_no_note(rgb: np.ndarray) -> None:
    notes: list[str] = []
    decode_image(_encode(Image.fromarray(rgb), "GIF"), notes=notes)
    assert notes == []


def test_rgb_decode_makes_no_needless_copies(rgb: np.ndarray) -> None:
    """A 6000x6000 upload is 108 MB per copy: an RGB image without an EXIF rotation is used as it is."""
    from agegender.data.images import _to_rgb

    img = Image.open(io.BytesIO(_encode(Image.fromarray(rgb), "JPEG")))
    assert _to_rgb(img) is img
    assert _to_rgb(img.convert("L")).mode == "RGB"


# ------------------------------------------------------------------------------------- reduced decoding


def _gradient(width: int, height: int) -> Image.Image:
    xs = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    ys = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    rgb = np.concatenate([np.broadcast_to(xs, (height, width, 1)), np.broadcast_to(ys, (height, width, 1))], 2)
    return Image.fromarray(np.concatenate([rgb, np.full((height, width, 1), 90, np.float32)], 2).astype(np.uint8))


@pytest.mark.parametrize(
    ("size", "factor"),
    [((4000, 3000), 1), ((4096, 100), 2), ((6000, 6000), 2), ((8191, 10), 2), ((8192, 10), 4), ((20000, 5), 8)],
)
def test_reduction_keeps_the_work_side(size: tuple[int, int], factor: int) -> None:
    assert reduction_factor(*size, work_side=2048) == factor
    assert max(size) // factor >= 2048 or factor == 1


def test_large_jpeg_is_decoded_reduced_with_the_photo_size() -> None:
    img = _gradient(4400, 2300)
    data = _encode(img, "JPEG", quality=95)
    scaled = decode_scaled(data, work_side=2048)
    assert (scaled.width, scaled.height, scaled.scale) == (4400, 2300, 2)
    _check_rgb(scaled.pixels, (1150, 2200))
    full = decode_image(data)  # same content at half size: each pixel ~ the mean of its 2x2 block
    block_means = full.reshape(1150, 2, 2200, 2, 3).mean((1, 3))
    assert np.abs(scaled.pixels.astype(np.float32) - block_means).mean() < 2.0


def test_exif_rotated_photo_reports_the_upright_size() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = _encode(_gradient(4200, 2100), "JPEG", exif=exif)
    scaled = decode_scaled(data, work_side=2048)
    assert (scaled.width, scaled.height, scaled.scale) == (2100, 4200, 2)
    _check_rgb(scaled.pixels, (2100, 1050))


def test_other_formats_are_reduced_after_decoding() -> None:
    scaled = decode_scaled(_encode(_gradient(4100, 40), "PNG"), work_side=2048)
    assert (scaled.width, scaled.height, scaled.scale) == (4100, 40, 2)
    _check_rgb(scaled.pixels, (20, 2050))


def test_small_photo_is_decoded_as_it_is() -> None:
    data = _encode(_gradient(300, 200), "JPEG")
    scaled = decode_scaled(data)
    assert scaled.scale == 1 and (scaled.width, scaled.height) == (300, 200)
    np.testing.assert_array_equal(scaled.pixels, decode_image(data))


def test_reduced_decode_refuses_garbage() -> None:
    with pytest.raises(ImageError, match="not a readable image"):
        decode_scaled(b"not an image", "x.jpg")
