"""Which face in a photo is "the" face: the rule shared by ``data align``, one-row-per-photo outputs and the
wild benchmarks, so training chips, submissions and evaluation all pick the same person."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["main_face_index"]


def main_face_index(boxes: Sequence[Sequence[float]], image_shape: Sequence[int]) -> int | None:
    """Index of the main face among ``boxes`` (x1, y1, x2, y2) in an image of ``image_shape`` (h, w, ...).

    Largest and most central wins: each box scores its area times a centrality weight that falls from 1 at
    the image centre to 0.5 at a corner. Labelled portraits are framed around their subject, so a large
    bystander at the edge loses to the central face, while a tiny face in the middle does not beat a big one.
    Returns None when there is no box.
    """
    if len(boxes) == 0:
        return None
    h, w = float(image_shape[0]), float(image_shape[1])
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    # distance of the box centre from the image centre, 0 at the centre and 1 at a corner
    dist = np.hypot((cx - w / 2) / max(w / 2, 1.0), (cy - h / 2) / max(h / 2, 1.0)) / np.sqrt(2)
    weight = 1.0 - 0.5 * np.clip(dist, 0.0, 1.0)
    return int(np.argmax(area * weight))
