"""``agegender predict --engine ray`` and the Ray Data callable on a local 2-CPU Ray cluster.

The photos are resized, mirrored and re-encoded copies of the shipped astronaut photo, generated pictures with
no face and two broken files, so the test needs nothing from ../shared.
"""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed (pip install 'agegender[ray]')")

from agegender.cli.main import main  # noqa: E402
from agegender.integrations import ray as engine  # noqa: E402

ASTRONAUT = Path(__file__).resolve().parents[2] / "agegender" / "serving" / "examples" / "astronaut.jpg"
KEY = ["path", "face"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """One local Ray instance for the module (starting one takes seconds), always shut down."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 files: 40 astronaut variants (200-460 px, some mirrored, JPEG and PNG), 8 without a face, 2 broken."""
    root = tmp_path_factory.mktemp("ray_photos")
    base = Image.open(ASTRONAUT).convert("RGB")
    for i in range(40):
        side = 200 + 7 * i
        img = base.resize((side, side), Image.BILINEAR)
        if i % 2:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        if i % 5 == 0:
            img.save(root / f"astronaut_{i:02d}.png")
        else:
            img.save(root / f"astronaut_{i:02d}.jpg", quality=60 + i)
    rng = np.random.default_rng(0)
    for i in range(8):
        if i % 2:
            pixels = rng.integers(0, 256, (120 + 10 * i, 160, 3), dtype=np.uint8)
        else:
            ramp = np.linspace(0, 255, 160, dtype=np.uint8)
            pixels = np.stack([np.tile(ramp, (140, 1))] * 3, axis=-1) // (i + 1)
        Image.fromarray(pixels).save(root / f"noface_{i}.jpg")
    (root / "broken.jpg").write_bytes(b"this is not an image")
    (root / "truncated.jpg").write_bytes(ASTRONAUT.read_bytes()[:300])
    return root


def _local_csv(inputs: list[str], tmp: Path) -> pd.DataFrame:
    out = tmp / "local.csv"
    assert main(["predict", *inputs, "--format", "csv", "-o", str(out), "-q"]) == 1  # 1: the broken files
    return pd.read_csv(out, dtype={"path": str})


def test_cli_matches_local_predict_and_resumes(cluster: None, photos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.parquet"
    code = main(["predict", "--engine", "ray", str(photos), "--output", str(out), "--workers", "2", "-q"])
    stdout, stderr = capsys.readouterr()
    assert code == 1, stderr  # the two broken files have no estimate; the job itself completed
    assert "50 files predicted, 0 already there" in stdout
    assert "50 files:" in stderr and "2 unreadable" in stderr

    got = pd.read_parquet(out)
    assert list(got.columns) == engine.PARQUET_SCHEMA.names
    want = _local_csv([str(photos)], tmp_path)
    assert list(want.columns) == list(got.columns)  # the CSV output's columns
    assert len(got) == len(want) and not got.duplicated(KEY).any()
    both = want.merge(got, on=KEY, how="outer", suffixes=("_local", "_ray"), indicator=True)
    assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"][KEY]
    for col in ("file_status", "status", "gender", "reasons"):
        local, distributed = both[f"{col}_local"].fillna(""), both[f"{col}_ray"].fillna("")
        assert (local == distributed).all(), col
    assert np.allclose(both["age_local"], both["age_ray"], atol=0.05, equal_nan=True)
    assert (got["file_status"] == "ok").sum() >= 35  # most astronaut variants have their face found

    errors = got[got["file_status"] == "error"].set_index("path")
    assert set(errors.index) == {str(photos / "broken.jpg"), str(photos / "truncated.jpg")}
    assert "not a readable image" in errors.loc[str(photos / "broken.jpg"), "message"]
    assert errors["face"].isna().all() and errors["age"].isna().all()

    # a re-run predicts only what is new (here: one added photo and one missing input) and adds part files
    extra = tmp_path / "more"
    extra.mkdir()
    shutil.copy(ASTRONAUT, extra / "new.jpg")
    missing = str(tmp_path / "gone.jpg")
    code = main(["predict", "--engine", "ray", str(photos), str(extra), missing, "--output", str(out), "-q"])
    stdout, stderr = capsys.readouterr()
    assert "1 files predicted, 50 already there (skipped), 1 not found" in stdout, stdout
    again = pd.read_parquet(out)
    assert not again.duplicated(KEY).any()
    assert set(again["path"]) == set(got["path"]) | {str(extra / "new.jpg"), missing}
    assert again.set_index("path").loc[missing, "message"] == f"{missing}: file not found"

    code = main(["predict", "--engine", "ray", str(photos), str(extra), missing, "--output", str(out), "-q"])
    assert "0 files predicted, 51 already there (skipped), 0 not found" in capsys.readouterr().out
    assert len(pd.read_parquet(out)) == len(again)


def test_read_images_keeps_uri_paths(cluster: None, photos: Path) -> None:
    """pyarrow drops the scheme from the paths it reads; the rows keep the URI that was given."""
    uri = (photos / "noface_0.jpg").as_uri()
    rows = engine.read_images([uri, str(photos / "noface_1.jpg")]).take_all()
    assert sorted(r["path"] for r in rows) == sorted([uri, str(photos / "noface_1.jpg")])
    assert all(isinstance(r["bytes"], bytes) and r["bytes"] for r in rows)


def test_list_inputs(photos: Path, tmp_path: Path) -> None:
    found = engine.list_inputs([photos.as_uri(), str(photos / "broken.jpg"), str(tmp_path / "no.jpg"), "file:///no"])
    uris = found.uris()
    assert len(uris) == 51 and uris[0].startswith("file:///") and uris[-1] == str(photos / "broken.jpg")
    assert found.missing == [str(tmp_path / "no.jpg"), "file:///no"]


def _batch(paths: list[str], data: list[bytes]) -> dict[str, np.ndarray]:
    return {"path": np.array(paths, dtype=object), "bytes": np.array(data, dtype=object)}


def test_face_predictor_isolates_failures(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Called as Ray would call it: a broken file and an image that makes prediction raise become error rows."""
    predictor = engine.FacePredictor()
    names = ["astronaut_00.png", "noface_0.jpg", "broken.jpg"]
    table = predictor(_batch(names, [(photos / n).read_bytes() for n in names]))
    assert table.schema == engine.PARQUET_SCHEMA
    assert table.column("file_status").to_pylist() == ["ok", "no_face", "error"]

    real = predictor.predictor.predict_batch

    def flaky(images, **kw):
        if any(img.shape[0] == 120 + 10 for img in images):  # noface_1.jpg: 130 rows
            raise RuntimeError("boom")
        return real(images, **kw)

    monkeypatch.setattr(predictor.predictor, "predict_batch", flaky)
    names = ["astronaut_00.png", "noface_1.jpg"]
    rows = predictor(_batch(names, [(photos / n).read_bytes() for n in names])).to_pylist()
    assert [r["file_status"] for r in rows] == ["ok", "error"]
    assert rows[1]["message"] == "noface_1.jpg: prediction failed (RuntimeError: boom)"


def test_unreadable_part_is_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine.results_table([]).to_pandas().to_parquet(tmp_path / "pandas.parquet")  # large_string columns
    (tmp_path / "killed_while_writing.parquet").write_bytes(b"PAR1 half a file")
    with caplog.at_level(logging.WARNING):
        table = engine.read_output(str(tmp_path), ["path"])
    assert table.num_rows == 0 and "killed_while_writing.parquet" in caplog.text


def test_output_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out.parquet").write_bytes(io.BytesIO(b"x").getvalue())
    with pytest.raises(engine.ConfigError, match="writes a folder"):
        engine.read_output(str(tmp_path / "out.parquet"), ["path"])


def test_actor_detector_keeps_spec_options_and_its_thread_budget() -> None:
    """An actor's MTCNN gets the options of a ``--detector`` spec and one ONNX Runtime thread per actor core."""
    detector = engine._detector("mtcnn:landmark_vote=False,min_face_size=30", None, 1)
    assert (detector.landmark_vote, detector.min_face_size) == (False, 30.0)
    assert detector._pnet._session.get_session_options().intra_op_num_threads == 1
