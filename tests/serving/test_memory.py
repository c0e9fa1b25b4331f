"""Giving memory back after large requests: when the trimmer trims, and that the server's requests reach it."""

from __future__ import annotations

import asyncio
import io
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from agegender.serving.limits import ServeLimits
from agegender.serving.memory import MemoryTrimmer, limit_arena_growth


def test_trims_only_after_large_photos() -> None:
    calls: list[int] = []
    trimmer = MemoryTrimmer(min_pixels=1000, trim=lambda: calls.append(1))
    assert not trimmer.after_request(999)
    assert trimmer.after_request(1000) and trimmer.after_request(10**8)
    assert len(calls) == trimmer.trims == 2


def test_one_trim_at_a_time() -> None:
    """A request that finds a trim running skips its own instead of queueing behind it."""
    started, release = threading.Event(), threading.Event()

    def slow_trim() -> None:
        started.set()
        release.wait(5)

    trimmer = MemoryTrimmer(min_pixels=1, trim=slow_trim)
    first = threading.Thread(target=trimmer.after_request, args=(10,))
    first.start()
    assert started.wait(5)
    assert not trimmer.after_request(10)  # skipped while the first trim runs
    release.set()
    first.join(5)
    assert trimmer.trims == 1
    assert trimmer.after_request(10) and trimmer.trims == 2


def test_a_failing_trim_releases_the_lock() -> None:
    def broken() -> None:
        raise OSError("no")

    trimmer = MemoryTrimmer(min_pixels=1, trim=broken)
    with pytest.raises(OSError):
        trimmer.after_request(10)
    with pytest.raises(OSError):  # not "skipped because a trim is running": the lock was released
        trimmer.after_request(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_glibc_knobs_are_found_on_linux() -> None:
    assert MemoryTrimmer()._trim is not None
    assert limit_arena_growth() is True


def test_service_trims_after_a_large_photo_and_reports_it_in_photo_pixels(service) -> None:
    """A 4200 px photo: decoded at half size (scale 2), the face box in photo pixels, then one trim."""
    from skimage.data import astronaut

    from agegender.serving.service import Service

    trims: list[int] = []
    svc = Service(service.predictor, ServeLimits(timeout_s=600))  # a loaded CI machine must not time it out
    svc.trimmer = MemoryTrimmer(min_pixels=10_000_000, trim=lambda: trims.append(1))
    big = Image.fromarray(astronaut()).resize((4200, 4200), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    try:
        small = asyncio.run(svc.predict_bytes(_jpeg(astronaut()), keep_image=True))
        assert trims == [] and small.image_scale == 1
        result = asyncio.run(svc.predict_bytes(buf.getvalue(), keep_image=True))
    finally:
        svc.close()
    assert trims == [1]
    assert (result.width, result.height, result.image_scale) == (4200, 4200, 2)
    assert result.image is not None and result.image.shape == (2100, 2100, 3)
    [face] = result.faces
    x1, y1, x2, y2 = face.box
    assert x1 < 225 * 8.2 < x2 and y1 < 115 * 8.2 < y2  # the astronaut's face centre, in the 4200 px photo
    assert 550 < x2 - x1 < 1000  # photo pixels: the face is ~730 px wide in the 4200 px photo, ~365 in the image


def _jpeg(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=90)
    return buf.getvalue()
