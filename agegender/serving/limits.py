"""Request limits and the bounded inference pool shared by the HTTP API and the web UI.

A public demo must survive big uploads, decompression bombs, slow requests and bursts of traffic without
exhausting memory or blocking the event loop, and every refusal must carry a message a person understands.
"""

from __future__ import annotations

import asyncio
import io
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from PIL import Image

T = TypeVar("T")

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeLimits:
    """What one server accepts; the defaults suit a small CPU box (e.g. a free Hugging Face Space)."""

    max_upload_bytes: int = 10 * MB
    max_pixels: int = 40_000_000
    timeout_s: float = 30.0
    concurrency: int = 2  # model calls running at once (threads)
    queue_size: int = 64  # requests allowed to wait on top of the running ones
    read_timeout_s: float = 60.0  # the whole upload must arrive within this: a stalled client is answered 408

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1 or self.max_pixels < 1:
            raise ValueError("max_upload_bytes and max_pixels must be positive")
        if self.timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("timeout_s and read_timeout_s must be positive")
        if self.concurrency < 1 or self.queue_size < 0:
            raise ValueError("concurrency must be >= 1 and queue_size >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for the page, so users know the limits before they hit one."""
        return (
            f"Images up to {format_bytes(self.max_upload_bytes, exact=False)} and "
            f"{self.max_pixels / 1e6:g} megapixels; "
            f"each request may take up to {self.timeout_s:g} s."
        )


def format_bytes(n: float, exact: bool = True) -> str:
    """Binary units, as the limits are set (``--max-upload-mb`` is in MiB); with ``exact``, the bytes too when over
    a KiB, so a file just over a limit never reads as equal to it."""
    if n < 1024:
        return f"{n:g} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            return f"{size:.4g} {unit} ({int(n):,} bytes)" if exact else f"{size:.3g} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


class ServingError(Exception):
    """A refused request: ``status`` is the HTTP code, ``code`` a stable machine-readable name."""

    status = 400
    code = "bad_request"
    title = "Cannot process this request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedRequest(ServingError):
    status, code, title = 400, "bad_request", "Malformed request"


class NotAnImage(ServingError):
    status, code, title = 400, "not_an_image", "Not an image"


class MissingFile(ServingError):
    status, code, title = 422, "missing_file", "No image"


class InvalidOption(ServingError):
    status, code, title = 422, "invalid_option", "Invalid option"


class TooLarge(ServingError):
    status, code, title = 413, "too_large", "Image too large"


class UnsupportedType(ServingError):
    status, code, title = 415, "unsupported_media_type", "Unsupported file type"


class UploadTimeout(ServingError):
    status, code, title = 408, "upload_timeout", "Upload too slow"


class Busy(ServingError):
    status, code, title = 503, "busy", "Server busy"


class Timeout(ServingError):
    status, code, title = 504, "timeout", "Timed out"


def check_upload_size(size: int, limits: ServeLimits) -> None:
    if size == 0:
        raise NotAnImage("The file is empty: upload a JPEG, PNG, WebP, BMP, TIFF or GIF image.")
    if size > limits.max_upload_bytes:
        raise TooLarge(
            f"The file is {format_bytes(size)}; the limit is {format_bytes(limits.max_upload_bytes)}. "
            "Upload a smaller or more compressed image."
        )


def check_pixels(data: bytes, limits: ServeLimits) -> tuple[int, int]:
    """Read only the image header, so an oversized (or decompression-bomb) image is refused before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
    except Image.DecompressionBombError:
        raise TooLarge(f"The image has too many pixels; the limit is {limits.max_pixels / 1e6:g} megapixels.") from None
    except Exception:  # PIL raises many types for garbage input
        raise NotAnImage("The file is not an image that can be read (JPEG, PNG, WebP, BMP, TIFF or GIF).") from None
    if width * height > limits.max_pixels:
        raise TooLarge(
            f"The image is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
            f"{limits.max_pixels / 1e6:g} megapixels. Resize it and try again."
        )
    return width, height


class InferencePool:
    """Runs blocking model calls on a few threads, with a bounded backlog and a per-request deadline.

    The event loop only awaits; at most ``concurrency`` calls run at once (more would just fight over the
    CPU), at most ``queue_size`` more wait, and anything beyond is refused with :class:`Busy` instead of
    piling up. A call that misses its deadline is answered with :class:`Timeout`; if it had not started it
    is dropped, otherwise its thread finishes and the slot is freed only then, so the bound always holds.
    """

    def __init__(self, limits: ServeLimits) -> None:
        self.limits = limits
        self._executor = ThreadPoolExecutor(max_workers=limits.concurrency, thread_name_prefix="agegender-infer")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Calls running or waiting."""
        return self._pending

    def _release(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        with self._lock:
            if self._pending >= self.limits.concurrency + self.limits.queue_size:
                raise Busy("The server is busy with other requests; try again in a few seconds.")
            self._pending += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        future.add_done_callback(self._release)
        timeout = self.limits.timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            future.cancel()
            raise Timeout(
                f"The request took longer than {timeout:g} s and was abandoned; the server may be "
                "busy, try again or use a smaller image."
            ) from None

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
