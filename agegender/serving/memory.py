"""Give the memory of large requests back to the system, so a flood of big uploads does not leave the server
holding gigabytes.

Python frees a request's buffers (the upload, the decoded photo) when it is done, but glibc's allocator keeps
freed blocks in its per-thread arenas for reuse: after a flood of 6000x6000 uploads the server's resident
memory stayed near its peak. Two glibc knobs fix that; both are no-ops elsewhere (macOS, musl, Windows):

* a fixed ``M_MMAP_THRESHOLD``: blocks of that size or more (uploads, photos) get their own mapping, which is
  unmapped when freed. By default glibc raises the threshold after each such free (up to 32 MB), after which
  those blocks land in the arenas and stay.
* ``malloc_trim(0)`` after a request that decoded a large photo: returns the arenas' free pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Blocks this large or larger are mapped on their own and unmapped when freed (glibc's default starts at
#: 128 KB but drifts up to 32 MB); 1 MB keeps the per-request buffers out of the arenas for little cost.
MMAP_THRESHOLD = 1024 * 1024
#: Trim after a request whose photo had at least this many pixels (about a 12 MP phone picture and up).
TRIM_PIXELS = 10_000_000
_M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None  # glibc only


def limit_arena_growth(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold for this process (see the module docstring); False where unavailable.

    Process-wide, so the server calls it at start; a library import must not change its host's allocator.
    """
    libc = _libc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    log.debug("mallopt(M_MMAP_THRESHOLD, %d): %s", threshold, ok)
    return ok


def _malloc_trim() -> Callable[[], object] | None:
    libc = _libc()
    return None if libc is None else lambda: libc.malloc_trim(0)


class MemoryTrimmer:
    """Calls ``trim`` after large requests; ``trim`` defaults to glibc's ``malloc_trim(0)`` (None elsewhere).

    Only after large photos: trimming walks the allocator's arenas, which costs milliseconds that a stream of
    small photos need not pay. One trim at a time; a request that finds one running skips its own.
    """

    def __init__(self, min_pixels: int = TRIM_PIXELS, trim: Callable[[], object] | None = None) -> None:
        self.min_pixels = min_pixels
        self._trim = trim if trim is not None else _malloc_trim()
        self._lock = threading.Lock()
        self.trims = 0

    def after_request(self, pixels: int) -> bool:
        """Trim if the request's photo had ``pixels`` >= ``min_pixels``; True when it trimmed."""
        if self._trim is None or pixels < self.min_pixels or not self._lock.acquire(blocking=False):
            return False
        try:
            self._trim()
            self.trims += 1
        finally:
            self._lock.release()
        return True
