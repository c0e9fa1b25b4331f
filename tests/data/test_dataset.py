"""FaceDataset: (tensor, age, gender) items, unlabelled records, the decode cache, DataLoader workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from agegender.data.dataset import MISSING, FaceDataset, decode_all
from agegender.data.readers import read_dataset
from agegender.data.records import FaceRecord
from agegender.data.transforms import build_eval_transform, build_train_transform

SIZE = 24


def test_items_are_tensor_age_gender(tiny_utkface) -> None:
    records = read_dataset(tiny_utkface.root).records
    ds = FaceDataset(records, build_eval_transform(SIZE))
    assert len(ds) == len(records)
    for i in (0, len(ds) - 1):
        x, age, gender = ds[i]
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and tuple(x.shape) == (3, SIZE, SIZE)
        assert isinstance(age, float) and age == records[i].age
        assert isinstance(gender, int) and gender == records[i].gender


def test_unlabelled_records_give_minus_one(tmp_path: Path, make_jpeg) -> None:
    path = make_jpeg(tmp_path / "x.jpg", seed=1)
    x, age, gender = FaceDataset([FaceRecord(path)], build_train_transform(SIZE))[0]
    assert (age, gender) == (-1.0, -1) and MISSING == -1
    assert tuple(x.shape) == (3, SIZE, SIZE)


def test_cache_gives_identical_eval_outputs(tiny_utkface) -> None:
    records = read_dataset(tiny_utkface.root).records[:6]
    plain = FaceDataset(records, build_eval_transform(SIZE))
    cached = FaceDataset(records, build_eval_transform(SIZE), cache_size=SIZE)
    assert cached._cache is not None and cached._cache.shape == (6, SIZE, SIZE, 3)
    for i in range(len(records)):
        a, b = plain[i], cached[i]
        assert torch.equal(a[0], b[0])
        assert a[1:] == b[1:]


def test_decode_all(tiny_utkface) -> None:
    records = read_dataset(tiny_utkface.root).records[:3]
    arr = decode_all(records, 10)
    assert arr.shape == (3, 10, 10, 3) and arr.dtype == np.uint8
    assert len({arr[i].tobytes() for i in range(3)}) == 3  # each slot holds its own image


def test_dataloader_with_workers(tiny_utkface) -> None:
    records = read_dataset(tiny_utkface.root).records[:4]
    ds = FaceDataset(records, build_train_transform(SIZE), cache_size=SIZE)
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
    x, age, gender = next(iter(loader))
    assert tuple(x.shape) == (4, 3, SIZE, SIZE) and x.dtype == torch.float32
    assert age.tolist() == [r.age for r in records]
    assert gender.tolist() == [r.gender for r in records]
