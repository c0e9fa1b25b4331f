"""Example photos for the demo page, made from images that scikit-image ships (no downloads, clear licences).

The files live in ``agegender/serving/examples/``; when they are missing (e.g. a wheel built without
them) they are regenerated on first start from ``skimage.data`` if scikit-image is installed, into the
package folder or, if that is read-only, into the user cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PIL import Image

PACKAGE_DIR = Path(__file__).resolve().parent / "examples"

#: file name -> what it shows (the caption users see is the file name, so keep it telling)
EXAMPLES = {
    "astronaut.jpg": "one face (Eileen Collins, NASA portrait; public domain, via scikit-image)",
    "astronaut_sizes.jpg": "the astronaut at four sizes: all estimated, the two smallest flagged low quality",
    "cameraman.jpg": "grayscale photo, one face (via scikit-image)",
    "cat.jpg": "no human face: shows the 'no face found' message (Chelsea the cat, via scikit-image)",
}


def _astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def _astronaut_sizes() -> Image.Image:
    face = _astronaut().crop((64, 0, 448, 400))
    canvas = Image.new("RGB", (960, 420), (235, 235, 235))
    canvas.paste(face, (10, 10))
    canvas.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((230, 240), Image.LANCZOS), (420, 90))
    canvas.paste(face.resize((130, 135), Image.LANCZOS), (690, 200))
    canvas.paste(face.resize((100, 104), Image.LANCZOS), (840, 250))
    return canvas


def _cameraman() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.camera())


def _cat() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea())


_MAKERS: dict[str, Callable[[], Image.Image]] = {
    "astronaut.jpg": _astronaut,
    "astronaut_sizes.jpg": _astronaut_sizes,
    "cameraman.jpg": _cameraman,
    "cat.jpg": _cat,
}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agegender" / "examples"


def make_examples(folder: Path) -> list[Path]:
    """Write any missing example into ``folder``; returns the ones that exist afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, make in _MAKERS.items():
        path = folder / name
        if not path.is_file():
            try:
                img = make()
            except ImportError:  # scikit-image is a test/dev dependency, not a serving one
                continue
            tmp = path.with_suffix(".tmp.jpg")
            img.save(tmp, format="JPEG", quality=90)
            tmp.replace(path)
        out.append(path)
    return out


def example_paths() -> list[Path]:
    """The example photos, creating them if needed; an empty list when they cannot be made."""
    if all((PACKAGE_DIR / n).is_file() for n in EXAMPLES):
        return [PACKAGE_DIR / n for n in EXAMPLES]
    for folder in (PACKAGE_DIR, _cache_dir()):
        try:
            paths = make_examples(folder)
        except OSError:
            continue
        if paths:
            return paths
    return []
