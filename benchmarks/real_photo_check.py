"""Each model's answer on a real photo outside UTKFace: scikit-image's astronaut (Eileen Collins, an adult woman).

Two paths, as a user would meet them: the fixed face crop of the shipped-model test (``detect=False``) and the
whole photo through the face detector and alignment. Writes ``benchmarks/results/real_photo_check.{json,md}``.

    python benchmarks/real_photo_check.py                                   # the shipped model
    python benchmarks/real_photo_check.py runs/a/model runs/b/model --output benchmarks/results/x.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skimage.data import astronaut

from agegender import Predictor
from agegender.inference.batch import write_result
from agegender.models.folder import DEFAULT_MODEL_DIR, read_config

#: Same fixed crop as tests/models/test_default_model.py: whole face, chin to forehead.
ASTRONAUT_FACE = (slice(60, 175), slice(178, 268))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, default=[DEFAULT_MODEL_DIR])
    ap.add_argument("--output", type=Path, default=Path("benchmarks/results/real_photo_check.json"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    photo = astronaut()
    rows = []
    for model in args.models:
        pred = Predictor.load(model, backend="torch")
        crop = pred.predict(photo[ASTRONAUT_FACE], detect=False)[0]
        found = pred.predict(photo)
        rows.append(
            {
                "model": str(model),
                "backbone": read_config(model)["model"]["backbone"],
                "crop_age": round(crop.age, 1),
                "crop_p_female": round(crop.p_female, 3),
                "detected_faces": len(found),
                "detected_age": round(found[0].age, 1) if found else None,
                "detected_p_female": round(found[0].p_female, 3) if found else None,
            }
        )
    md = [
        f"scikit-image astronaut (an adult woman); `{' '.join(['python', 'benchmarks/real_photo_check.py', *argv])}`",
        "",
        "| model | backbone | fixed crop: age / P(female) | detected: age / P(female) |",
        "|---|---|---|---|",
    ]
    md += [
        f"| {r['model']} | {r['backbone']} | {r['crop_age']} / {r['crop_p_female']} | "
        f"{r['detected_age']} / {r['detected_p_female']} |"
        for r in rows
    ]
    text = "\n".join(md) + "\n"
    write_result(args.output, {"photo": "skimage.data.astronaut()", "rows": rows}, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
