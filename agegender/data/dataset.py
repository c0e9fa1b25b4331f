"""Torch dataset over face records, with an optional in-memory cache of decoded, pre-resized images."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from agegender.data.images import load_image
from agegender.data.records import FaceRecord

MISSING = -1


def _read(rec: FaceRecord, size: int | None) -> np.ndarray:
    img = load_image(rec.path)
    if size is not None and img.shape[:2] != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def decode_all(records: Sequence[FaceRecord], size: int, progress: bool = False) -> np.ndarray:
    """Decode and resize every record's image into one (N, size, size, 3) uint8 array, 4 threads."""
    out = np.empty((len(records), size, size, 3), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=4) as pool:
        it = pool.map(lambda r: _read(r, size), records)
        for i, img in enumerate(
            tqdm(it, total=len(records), desc="decoding images", disable=not progress, leave=False)
        ):
            out[i] = img
    return out


class FaceDataset(Dataset):
    """Yields ``(image tensor, age, gender)``; unlabelled records give age -1 and gender -1.

    ``extra_targets``: per-record arrays (e.g. a teacher's soft targets) appended to each item.

    ``cache_size`` decodes every image once (resized to that side) and keeps it in memory: on small
    machines JPEG decoding otherwise dominates training time. The cache is built in the main process and
    shared with DataLoader workers by fork.
    """

    def __init__(
        self,
        records: Sequence[FaceRecord],
        transform: Callable[..., dict],
        cache_size: int | None = None,
        progress: bool = False,
    ) -> None:
        self.records = list(records)
        self.transform = transform
        self.cache_size = cache_size
        self._cache: np.ndarray | None = None
        self.extra_targets: tuple[np.ndarray, ...] = ()
        if cache_size:
            self._cache = decode_all(self.records, cache_size, progress)

    def __len__(self) -> int:
        return len(self.records)

    def image(self, index: int) -> np.ndarray:
        if self._cache is not None:
            return self._cache[index]
        return _read(self.records[index], None)

    @property
    def cached_images(self) -> np.ndarray | None:
        """The decoded, resized images (N, S, S, 3) when the cache is on."""
        return self._cache

    def __getitem__(self, index: int) -> tuple:
        rec = self.records[index]
        x = self.transform(image=self.image(index))["image"]
        age = float(rec.age) if rec.age is not None else float(MISSING)
        gender = int(rec.gender) if rec.gender is not None else MISSING
        return (x, age, gender, *(t[index] for t in self.extra_targets))
