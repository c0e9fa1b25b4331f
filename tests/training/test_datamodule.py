"""The training data module decodes only the images a quick run (data.limit) uses, and drops broken ones."""

from __future__ import annotations

import shutil

from agegender.data import readers
from agegender.training.config import load_recipe
from agegender.training.datamodule import AgeGenderDataModule


def test_limit_decodes_only_the_sample_and_drops_its_broken_images(utk_dir, tmp_path, overrides, monkeypatch):
    data = shutil.copytree(utk_dir, tmp_path / "images")
    decoded: list[str] = []
    check = readers.check_image
    monkeypatch.setattr(readers, "check_image", lambda b, name: decoded.append(name) or check(b, name))

    def setup(limit: int) -> AgeGenderDataModule:
        recipe = load_recipe("scratch_cnn", [*overrides(data, tmp_path / "run"), f"data.limit={limit}"])
        dm = AgeGenderDataModule(recipe.data, 32, (0.5,) * 3, (0.5,) * 3, tmp_path / f"split{limit}.json", False)
        dm.setup()
        return dm

    dm = setup(8)
    chosen = {r.path.name for split in dm.splits.values() for r in split}
    assert len(dm.splits["train"]) == 8 and sorted(decoded) == sorted(chosen)  # 40 files hashed, 16 decoded
    assert len(decoded) == 8 + 4 + 4

    victim = dm.splits["train"][0].path
    victim.write_bytes(b"not a jpeg")  # the same sample again (the split hashes bytes: the victim moves or not)
    decoded.clear()
    dm = setup(40)
    assert victim.name not in {r.path.name for r in dm.splits["train"]}
    assert sum(len(s) for s in dm.splits.values()) == 39 and len(decoded) == 40
