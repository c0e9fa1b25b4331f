"""Shared test fixtures: the shared-assets folder and a tiny synthetic UTKFace-style folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


def find_shared_dir() -> Path:
    """``$AGEGENDER_SHARED`` if set, else ``<repo>/../shared`` (it may not exist)."""
    env = os.environ.get("AGEGENDER_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared assets folder; tests that use it are skipped, with the reason, where it is absent."""
    path = find_shared_dir()
    if not path.is_dir():
        pytest.skip(f"shared assets folder not found at {path} (set AGEGENDER_SHARED to its location)")
    return path


@pytest.fixture(scope="session")
def shared_asset() -> Callable[[str | Path], Path]:
    """``shared_asset("data/wild/t1.jpg")``: the path of one shared asset, or a skip saying what is missing."""

    def find(relative: str | Path) -> Path:
        path = find_shared_dir() / relative
        if not path.exists():
            pytest.skip(f"shared asset missing: {path} (set AGEGENDER_SHARED to the shared folder)")
        return path

    return find


def write_jpeg(path: Path, seed: int, size: tuple[int, int] = (20, 16)) -> Path:
    """A small JPEG of seeded noise: different seeds give different bytes, equal seeds identical bytes."""
    h, w = size
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def write_astronaut_photos(root: Path, grey: bool = True) -> Path:
    """Photos with one face each, lossless (PNG: detection is exactly as on the array): the astronaut
    (``astronaut.png``) and her mirror image (``mirrored.png``); with ``grey``, a frame without a face
    (``grey.png``)."""
    from skimage.data import astronaut

    root.mkdir(parents=True, exist_ok=True)
    image = astronaut()
    Image.fromarray(image).save(root / "astronaut.png")
    Image.fromarray(np.ascontiguousarray(image[:, ::-1])).save(root / "mirrored.png")
    if grey:
        Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(root / "grey.png")
    return root


@pytest.fixture(scope="session")
def make_astronaut_photos() -> Callable[..., Path]:
    """Factory ``make_astronaut_photos(root, grey=True)``: see :func:`write_astronaut_photos`."""
    return write_astronaut_photos


@pytest.fixture(scope="session")
def make_jpeg() -> Callable[..., Path]:
    """Factory ``make_jpeg(path, seed, size=(h, w))`` writing a small synthetic JPEG."""
    return write_jpeg


@dataclass
class TinyUTKFace:
    """A temp UTKFace-style folder and the names of what it holds, by category."""

    root: Path
    regular: list[str] = field(default_factory=list)
    irregular: dict[str, tuple[int, int, int | None]] = field(default_factory=dict)
    same_label_dups: tuple[str, str] = ("", "")
    conflicting_dups: tuple[str, str] = ("", "")
    bad: dict[str, str] = field(default_factory=dict)  # problem kind -> file name

    @property
    def usable_first(self) -> int:
        """Usable records with duplicates='first': one copy of the agreeing pair, none of the conflicting."""
        return len(self.regular) + len(self.irregular) + 1

    @property
    def usable_keep(self) -> int:
        return len(self.regular) + len(self.irregular) + 4


#: Ages of the regular images: every age band of agegender.data.splits gets some.
_TINY_AGES = [1, 5, 9, 14, 17, 21, 24, 27, 31, 35, 38, 42, 47, 52, 58, 61, 66, 72, 80, 90]


@pytest.fixture(scope="session")
def tiny_utkface(tmp_path_factory: pytest.TempPathFactory) -> TinyUTKFace:
    """UTKFace-style folder: regular and irregular names, two duplicate pairs and one file per bad kind.

    Session-scoped: tests must not modify it.
    """
    root = tmp_path_factory.mktemp("tiny_utkface")
    tiny = TinyUTKFace(root)
    seed = 0
    for i, age in enumerate(_TINY_AGES):
        name = f"{age}_{i % 2}_{i % 5}_2017011617{i:07d}.jpg.chip.jpg"
        write_jpeg(root / name, seed := seed + 1)
        tiny.regular.append(name)
    # The irregular names of the original release: no race, a missing dot, a space before ".jpg".
    tiny.irregular = {
        "39_1_20170116174525125.jpg.chip.jpg": (39, 1, None),
        "55_0_0_20170116232725357jpg.chip.jpg": (55, 0, 0),
        "30_1_2_20170116174525999 .jpg.chip.jpg": (30, 1, 2),
    }
    for name in tiny.irregular:
        write_jpeg(root / name, seed := seed + 1)
    # Byte-identical pairs: one agreeing on the labels, one not.
    tiny.same_label_dups = ("20_0_1_20170110000000001.jpg.chip.jpg", "20_0_1_20170110000000002.jpg.chip.jpg")
    tiny.conflicting_dups = ("40_1_0_20170110000000003.jpg.chip.jpg", "45_0_0_20170110000000004.jpg.chip.jpg")
    for pair in (tiny.same_label_dups, tiny.conflicting_dups):
        data = write_jpeg(root / pair[0], seed := seed + 1).read_bytes()
        (root / pair[1]).write_bytes(data)
    # One file per bad kind.
    tiny.bad = {
        "empty_image": "33_0_1_20170110000000005.jpg.chip.jpg",
        "undecodable_image": "44_1_3_20170110000000006.jpg.chip.jpg",
        "unparseable_name": "not_a_utkface_name.jpg",
        "age_over_120": "130_0_0_20170110000000007.jpg.chip.jpg",
        "gender_not_0_or_1": "30_2_0_20170110000000008.jpg.chip.jpg",
    }
    (root / tiny.bad["empty_image"]).write_bytes(b"")
    (root / tiny.bad["undecodable_image"]).write_bytes(np.random.default_rng(99).bytes(600))
    for kind in ("unparseable_name", "age_over_120", "gender_not_0_or_1"):
        write_jpeg(root / tiny.bad[kind], seed := seed + 1)
    (root / "README.txt").write_text("not an image: must be ignored\n")
    return tiny
