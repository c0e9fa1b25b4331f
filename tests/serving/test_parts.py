"""The pieces without a server: drawing, table rows, limits, examples, the CLI flags and the Space entry point."""

from __future__ import annotations

import runpy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from agegender.inference.predictor import FaceResult
from agegender.serving.drawing import COLORS, TABLE_HEADERS, _font, annotate, face_label, summary_message, table_rows
from agegender.serving.limits import NotAnImage, ServeLimits, TooLarge, check_pixels, check_upload_size

REPO = Path(__file__).resolve().parents[2]

OK = FaceResult(
    status="ok",
    age=34.2,
    age_low=29.1,
    age_high=39.3,
    age_std=4.0,
    gender="female",
    gender_probability=0.91,
    p_female=0.91,
    box=[10, 20, 60, 80],
    score=0.99,
)
SMALL = FaceResult(
    status="low_quality",
    age=20.0,
    age_low=12.0,
    age_high=28.0,
    age_std=6.2,
    gender="male",
    gender_probability=0.7,
    p_female=0.3,
    box=[100, 100, 120, 125],
    score=0.9,
    message="low quality: small face (20x25 px, below 40 px)",
    reasons=["small"],
    quality=0.5,
)
SKIPPED = FaceResult(
    status="skipped",
    box=[140, 140, 190, 190],
    score=0.99,
    message="skipped: quality 0.40 (blurry) is below min_quality 0.5",
    reasons=["blurry"],
    quality=0.4,
)


def test_annotate_colours_ok_low_quality_and_skipped_faces_apart() -> None:
    img = annotate(np.zeros((200, 200, 3), np.uint8), [OK, SMALL, SKIPPED])
    arr = np.asarray(img)
    assert img.size == (200, 200)
    assert tuple(arr[50, 10]) == COLORS["female"]  # left edge of the ok face's box
    assert tuple(arr[101, 100]) == COLORS["low_quality"]  # the flagged face: amber, not its gender colour
    assert COLORS["low_quality"] not in (COLORS["male"], COLORS["female"], COLORS[None])
    left_edge = [tuple(arr[y, 100]) for y in range(108, 125)]
    assert (0, 0, 0) in left_edge and COLORS["low_quality"] in left_edge  # dashed
    assert tuple(arr[170, 140]) == COLORS[None]  # skipped: grey, solid


def test_annotate_shrinks_big_photos() -> None:
    img = annotate(np.zeros((3000, 1500, 3), np.uint8), [OK], max_side=1000)
    assert img.size == (500, 1000)


def test_table_rows_and_messages() -> None:
    rows = table_rows([OK, SMALL, SKIPPED])
    assert len(rows[0]) == len(TABLE_HEADERS)
    assert rows[0] == [1, "34", "29–39", "female", "91%", "–", "ok"]
    assert rows[1] == [2, "20", "12–28", "male", "70%", "0.50", "low quality: small (20×25 px)"]
    assert rows[2] == [3, "–", "–", "–", "–", "0.40", "skipped: blurry"]
    assert OK.label == "F, 34 (29–39)" and SMALL.label == "M, 20 (12–28)?"
    assert "No face found" in summary_message([])
    assert summary_message([OK, SMALL, SKIPPED]) == (
        "3 faces found; 1 low quality (small; amber, less reliable); "
        "1 skipped by the minimum size or quality (grey, not estimated)."
    )


def test_size_and_pixel_checks(astronaut_png: bytes) -> None:
    limits = ServeLimits(max_upload_bytes=1000, max_pixels=512 * 512)
    with pytest.raises(NotAnImage, match="empty"):
        check_upload_size(0, limits)
    with pytest.raises(TooLarge):
        check_upload_size(1001, limits)
    assert check_pixels(astronaut_png, limits) == (512, 512)
    with pytest.raises(TooLarge, match="megapixels"):
        check_pixels(astronaut_png, ServeLimits(max_pixels=512 * 511))
    with pytest.raises(NotAnImage):
        check_pixels(b"GIF89a but not really", limits)


def test_examples_exist_and_are_images() -> None:
    from PIL import Image

    from agegender.serving.examples import EXAMPLES, example_paths

    paths = example_paths()
    assert [p.name for p in paths] == list(EXAMPLES)
    for p in paths:
        with Image.open(p) as im:
            assert min(im.size) >= 256


def test_cli_flags_map_to_config(tmp_path: Path) -> None:
    import argparse

    from agegender.cli import serve

    parser = argparse.ArgumentParser()
    serve.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        [
            "serve",
            "--model",
            str(tmp_path),
            "--port",
            "9000",
            "--max-upload-mb",
            "2",
            "--max-pixels",
            "1000000",
            "--concurrency",
            "3",
            "--timeout",
            "5",
        ]
    )
    assert args.func is serve.cmd_serve and args.port == 9000 and args.host == "127.0.0.1"
    cfg = serve.config_from_args(args)
    assert cfg.model == str(tmp_path)
    assert cfg.limits == ServeLimits(
        max_upload_bytes=2 * 1024 * 1024,
        max_pixels=1_000_000,
        timeout_s=5,
        concurrency=3,
        queue_size=ServeLimits().queue_size,
    )
    assert cfg.demo == "background"  # the API answers while the page loads
    assert serve.config_from_args(parser.parse_args(["serve", "--no-demo"])).demo == "off"


def test_serve_is_a_subcommand() -> None:
    from agegender.cli.main import _load_extra_commands, build_parser

    _load_extra_commands()
    args = build_parser().parse_args(["serve", "--concurrency", "1"])
    assert args.command == "serve" and args.concurrency == 1


def test_space_entry_point_builds_app(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    """Repository-root app.py: module-level ``app`` and ``demo`` configured from the environment."""
    import gradio as gr
    from fastapi import FastAPI

    monkeypatch.setenv("AGEGENDER_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("AGEGENDER_MAX_UPLOAD_MB", "1.5")
    namespace = runpy.run_path(str(REPO / "app.py"), run_name="space_app")
    assert isinstance(namespace["app"], FastAPI) and isinstance(namespace["demo"], gr.Blocks)
    service = namespace["app"].state.service
    assert service.limits.max_upload_bytes == int(1.5 * 1024 * 1024)
    assert service.info["backbone"] == "scratch_cnn"
    service.close()


def test_model_description_explains_flags_and_widening() -> None:
    from agegender.serving.service import model_description

    info = {"name": "m", "backbone": "b", "input_size": 64, "age_head": "distribution", "age_range": [0, 100]}
    text = model_description(info)
    assert "every face is estimated" in text and "low quality" in text and "not estimated" not in text.split("skip")[0]
    assert "widened" not in text
    assert "interval is set by the model's calibration" in model_description({**info, "calibrated": True})


def test_labels_avoid_neighbouring_faces_and_boxes_are_clipped() -> None:
    from agegender.serving.drawing import _clipped, _overlap, _place_label

    assert _clipped((-10, -5, 50, 300), 1.0, 100, 200) == (0.0, 0.0, 50.0, 199.0)
    face, neighbour = (40.0, 40.0, 60.0, 60.0), (30.0, 10.0, 70.0, 38.0)  # a face right above this one
    tag = _place_label(face, (30.0, 10.0), (100, 100), [neighbour])
    assert _overlap(tag, neighbour) == 0.0
    alone = _place_label(face, (30.0, 10.0), (100, 100), [])
    assert alone == (40.0, 30.0, 70.0, 40.0)  # default: above the box, left-aligned


def test_picture_labels_use_only_characters_the_font_has() -> None:
    # The interval's en dash was drawn as a missing-glyph box ("13▯87") by Pillow's bundled font.
    def glyph(c: str) -> bytes:
        image = Image.new("L", (40, 40))
        ImageDraw.Draw(image).text((5, 5), c, font=_font(20), fill=255)
        return image.tobytes()

    missing = glyph("\U0010fffd")
    for i, face in enumerate((OK, SMALL, SKIPPED), start=1):
        label = face_label(i, face)
        boxes = [c for c in set(label) if c != " " and glyph(c) == missing]
        assert not boxes, (label, boxes)
    assert face_label(1, OK) == "1: F, 34 (29-39)"


def test_annotate_draws_photo_pixel_boxes_on_a_reduced_image() -> None:
    """A photo decoded at half size: its boxes (in photo pixels) land where the face is in the smaller image."""
    img = annotate(np.zeros((100, 100, 3), np.uint8), [OK], image_scale=2.0)  # OK's box: 10,20 - 60,80 in the photo
    arr = np.asarray(img)
    assert tuple(arr[25, 5]) == COLORS["female"]  # left edge at x = 5 in the half-size image
    assert tuple(arr[25, 10]) != COLORS["female"]  # not at the photo's x = 10


def test_a_class_photos_labels_leave_its_faces_visible() -> None:
    """Labels sized for a portrait (a 46 px font on a 1200 px picture) buried a class photo's 60 px faces."""
    photo = np.full((800, 1200, 3), 90, np.uint8)
    faces = [replace(OK, box=[x, y, x + 60, y + 60]) for y in range(60, 800, 160) for x in range(40, 1200, 150)]
    drawn = np.asarray(annotate(photo, faces)).astype(int)
    inner = [drawn[y + 8 : y + 52, x + 8 : x + 52] for x, y, *_ in (f.box for f in faces)]
    untouched = np.mean([np.all(face == 90, axis=2).mean() for face in inner])
    assert untouched > 0.9, untouched
    assert face_label(3, OK, short=True) == "3: F, 34"
    assert face_label(4, SMALL, short=True) == "4: M, 20?"
    assert face_label(5, SKIPPED, short=True) == "5: skipped"


def test_a_busy_port_is_one_error_line_before_the_model_loads(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from agegender.cli.main import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # --model names nothing: reaching the model load would be a different error
        code = main(["serve", "--no-demo", "--port", str(port), "--model", "/nonexistent/model"])
    err = capsys.readouterr().err
    assert code == 2 and f"error: cannot listen on 127.0.0.1:{port}" in err and "choose another --port" in err


def test_sizes_are_named_in_binary_units_with_the_exact_bytes() -> None:
    from agegender.serving.limits import format_bytes

    assert format_bytes(10 * 1024 * 1024) == "10 MiB (10,485,760 bytes)"
    assert format_bytes(10 * 1024 * 1024 + 1) == "10 MiB (10,485,761 bytes)"
    assert format_bytes(10 * 1024 * 1024, exact=False) == "10 MiB" and format_bytes(500) == "500 bytes"
    with pytest.raises(TooLarge, match="is 1001 bytes; the limit is 1000 bytes"):
        check_upload_size(1001, ServeLimits(max_upload_bytes=1000))
