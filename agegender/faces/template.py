"""Derive the UTKFace crop template from the chips themselves, so our crops match what the models were trained on.

UTKFace's "aligned & cropped" chips were made by the dataset authors with their own aligner; we do not copy
its parameters from anywhere. Instead we run our detectors on a sample of chips and take medians:

* the five-landmark template (where eyes, nose and mouth corners sit in a 200x200 chip), used by
  :func:`agegender.faces.align.align_face`;
* for each detector, how its box relates to the chip frame (centre offset and chip side in box units),
  used by :func:`agegender.faces.align.crop_from_box` when a detector gives no landmarks;
* the blur threshold: the 5th percentile of chip sharpness, i.e. "blurrier than 95% of the training data";
* for each detector, the 5th percentile of its score on the chips: below it a face is flagged "low_score", i.e.
  less sure than for 95% of training faces (``agegender.faces.flags.LOW_SCORE_THRESHOLDS``).

Chips are padded with a black border before detection because faces fill them edge to edge, which
truncates boxes and makes detectors miss. Run::

    python -m agegender.faces.template --images ../shared/data/utkface/images --n 500

and paste the printed constants into ``align.py`` (and the score thresholds into ``flags.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from agegender.faces.align import face_quality
from agegender.faces.detectors import Detection, FaceDetector, create_detector

log = logging.getLogger(__name__)

CHIP_SIZE = 200
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


@dataclass
class TemplateResult:
    """Medians over the sample, with spreads (median absolute deviation) to judge how tight they are."""

    landmarks: np.ndarray  # 5x2, pixels in a CHIP_SIZE chip
    landmark_mad: np.ndarray  # 5x2
    box_frames: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    box_frame_mad: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    n_images: int = 0
    n_landmarks: int = 0
    n_boxes: dict[str, int] = field(default_factory=dict)
    landmark_detector: str = "mtcnn"
    blur_p5: float = 0.0  # 5th percentile of face_quality()["blur"] over the chips
    score_p5: dict[str, float] = field(default_factory=dict)  # per detector, over the chips it found

    def to_python(self, command: str) -> str:
        """Source text for ``align.py``: the constants plus where they came from."""
        rows = "\n".join(f"        [{x:.1f}, {y:.1f}]," for x, y in self.landmarks)
        frames = "\n".join(
            f'    "{k}": ({dx:.4f}, {dy:.4f}, {s:.4f}),  # {self.n_boxes[k]} chips'
            for k, (dx, dy, s) in self.box_frames.items()
        )
        return (
            f"# Produced by `{command}`:\n"
            f"# median {self.landmark_detector} landmarks on {self.n_landmarks} of {self.n_images} UTKFace chips.\n"
            "UTKFACE_TEMPLATE = np.array(\n    [\n" + rows + "\n    ],\n    dtype=np.float32,\n)\n"
            "BOX_FRAMES: dict[str, tuple[float, float, float]] = {\n" + frames + "\n}\n"
            f"BLUR_THRESHOLD = {self.blur_p5:.1f}  # 5th percentile over {self.n_images} chips\n"
            "LOW_SCORE_THRESHOLDS: dict[str, float] = {\n"
            + "\n".join(f'    "{k}": {v:.3f},  # {self.n_boxes[k]} chips' for k, v in self.score_p5.items())
            + "\n}\n"
        )

    def to_json(self) -> dict:
        return {
            "landmarks": self.landmarks.astype(float).round(2).tolist(),
            "landmark_mad": self.landmark_mad.astype(float).round(2).tolist(),
            "box_frames": self.box_frames,
            "box_frame_mad": self.box_frame_mad,
            "n_images": self.n_images,
            "n_landmarks": self.n_landmarks,
            "n_boxes": self.n_boxes,
            "landmark_detector": self.landmark_detector,
            "blur_p5": self.blur_p5,
            "score_p5": self.score_p5,
        }


def sample_images(folder: str | Path, n: int, seed: int = 0) -> list[Path]:
    """A reproducible random sample (sorted listing + seeded RNG), so reruns give the same constants."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no .jpg/.png images in {folder}")
    return random.Random(seed).sample(files, min(n, len(files)))


def load_chip(path: Path) -> np.ndarray | None:
    """RGB chip resized to CHIP_SIZE (UTKFace chips already are), or None if unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    if bgr.shape[:2] != (CHIP_SIZE, CHIP_SIZE):
        bgr = cv2.resize(bgr, (CHIP_SIZE, CHIP_SIZE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def detect_in_chip(detector: FaceDetector, chip: np.ndarray, border: int) -> Detection | None:
    """The chip's own face (nearest the centre) in chip coordinates, detected on a padded copy."""
    padded = cv2.copyMakeBorder(chip, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    found = [d for d in detector.detect(padded) if d.size >= 0.3 * CHIP_SIZE]
    if not found:
        return None
    centre = CHIP_SIZE / 2 + border
    best = min(found, key=lambda d: np.hypot((d.box[0] + d.box[2]) / 2 - centre, (d.box[1] + d.box[3]) / 2 - centre))
    box = tuple(v - border for v in best.box)
    marks = None if best.landmarks is None else best.landmarks - border
    return Detection(box, best.score, marks)


def box_frame(box: Sequence[float]) -> tuple[float, float, float]:
    """Chip frame in box units: centre offset (dx, dy) as fractions of box width/height, side / box size."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    return (
        (CHIP_SIZE / 2 - (x1 + x2) / 2) / w,
        (CHIP_SIZE / 2 - (y1 + y2) / 2) / h,
        CHIP_SIZE / float(np.sqrt(w * h)),
    )


def _median_and_mad(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    med = np.median(values, axis=0)
    return med, np.median(np.abs(values - med), axis=0)


def default_detectors(yunet_model: str | None = None) -> dict[str, FaceDetector]:
    """Detectors as used on chips: permissive score, faces at least 40 px (chips are 200 px)."""
    dets = {
        "mtcnn": create_detector("mtcnn", min_face_size=40, score_threshold=0.5),
        "haar": create_detector("haar", min_face_size=40),
        "blazeface": create_detector("blazeface", min_face_size=40, score_threshold=0.5),
    }
    if yunet_model:
        dets["yunet"] = create_detector("yunet", model_path=yunet_model, min_face_size=40, score_threshold=0.5)
    return dets


def derive_template(
    images: str | Path,
    n: int = 500,
    seed: int = 0,
    detectors: dict[str, FaceDetector] | None = None,
    landmark_detector: str = "mtcnn",
    border: int = 50,
) -> TemplateResult:
    """Run the detectors on ``n`` sampled chips: median landmarks of ``landmark_detector``, box frames of all."""
    box_detectors = detectors or default_detectors()
    if landmark_detector not in box_detectors:
        raise ValueError(f"landmark detector {landmark_detector!r} is not among {sorted(box_detectors)}")
    landmarks: list[np.ndarray] = []
    frames: dict[str, list[tuple[float, float, float]]] = {k: [] for k in box_detectors}
    scores: dict[str, list[float]] = {k: [] for k in box_detectors}
    paths = sample_images(images, n, seed)
    chips = (c for c in map(load_chip, paths) if c is not None)
    n_images = 0
    blur = []
    for chip in chips:
        n_images += 1
        blur.append(face_quality(chip)["blur"])
        for name, det in box_detectors.items():
            found = detect_in_chip(det, chip, border)
            if found is None:
                continue
            frames[name].append(box_frame(found.box))
            scores[name].append(found.score)
            if name == landmark_detector and found.landmarks is not None:
                landmarks.append(found.landmarks)
    if not landmarks:
        raise RuntimeError(f"{landmark_detector} found no landmarks on {n_images} chips from {images}")
    med, mad = _median_and_mad(np.stack(landmarks))
    result = TemplateResult(med, mad, n_images=n_images, n_landmarks=len(landmarks))
    result.landmark_detector = landmark_detector
    result.blur_p5 = round(float(np.percentile(blur, 5)), 2)
    for name, rows in frames.items():
        if rows:
            fmed, fmad = _median_and_mad(np.asarray(rows))
            result.box_frames[name] = tuple(round(float(v), 4) for v in fmed)
            result.box_frame_mad[name] = tuple(round(float(v), 4) for v in fmad)
            result.n_boxes[name] = len(rows)
            result.score_p5[name] = round(float(np.percentile(scores[name], 5)), 4)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="folder of UTKFace aligned & cropped chips")
    parser.add_argument("--n", type=int, default=500, help="number of chips to sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--border", type=int, default=50, help="black padding (px) around each chip")
    parser.add_argument("--yunet-model", help="also measure YuNet's box frame with this .onnx file")
    parser.add_argument("--json", type=Path, help="also write the full result (with spreads) here")
    args = parser.parse_args(argv)

    dets = default_detectors(args.yunet_model)
    result = derive_template(args.images, args.n, args.seed, dets, "mtcnn", args.border)
    command = f"python -m agegender.faces.template --images {args.images} --n {args.n}"
    if args.seed:
        command += f" --seed {args.seed}"
    if args.yunet_model:
        command += " --yunet-model " + Path(args.yunet_model).name
    sys.stdout.write(result.to_python(command) + "\n")  # the constants to paste: the script's output
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log.info("# spread (median absolute deviation): %s", json.dumps(result.to_json()["landmark_mad"]))
    log.info("# box frame spread: %s", json.dumps(result.box_frame_mad))
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
