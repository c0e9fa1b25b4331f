"""Serving fixtures: a tiny random model (loaded once), test photos, and a live server on 127.0.0.1.

The model is untrained, so tests check structure and behaviour (faces found, keys, status codes), never
the estimates themselves.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")
pytest.importorskip("fastapi")

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight scratch_cnn model folder: same format as a trained one, built in a second."""
    from agegender.models.folder import save_model_folder
    from agegender.models.model import ModelConfig, build_model

    folder = tmp_path_factory.mktemp("tiny_model")
    return save_model_folder(build_model(ModelConfig(backbone="scratch_cnn", input_size=64)), folder)


@pytest.fixture(scope="session")
def service(tiny_model_dir: Path):
    """One loaded model shared by every app in the session (apps with other limits wrap the same predictor)."""
    from agegender.serving.service import Service

    # AGEGENDER_TEST_MODEL=agegender/models/default runs the same tests (and screenshots) with a real model.
    svc = Service.load(os.environ.get("AGEGENDER_TEST_MODEL") or tiny_model_dir)
    yield svc
    svc.close()


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def astronaut_png() -> bytes:
    """skimage's astronaut as PNG: exactly one face (lossy JPEG at low quality can add a tiny false face)."""
    from skimage.data import astronaut

    return png_bytes(astronaut())


@pytest.fixture(scope="session")
def astronaut_file(tmp_path_factory: pytest.TempPathFactory, astronaut_png: bytes) -> Path:
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    path.write_bytes(astronaut_png)
    return path


@pytest.fixture(scope="session")
def tiny_face_png() -> bytes:
    """The astronaut shrunk so her face is ~30 px wide: found, but below MIN_FACE_SIZE (flagged small)."""
    from skimage.data import astronaut

    image = Image.fromarray(astronaut())
    canvas = Image.new("RGB", (400, 400), (200, 200, 200))
    canvas.paste(image.resize((image.width // 3, image.height // 3), Image.Resampling.LANCZOS), (120, 100))
    return png_bytes(np.asarray(canvas))


@pytest.fixture(scope="session")
def grey_png() -> bytes:
    """A uniform grey image: decodes fine, has no face."""
    return png_bytes(np.full((240, 320, 3), 128, np.uint8))


class LiveServer:
    """The app served by uvicorn in a background thread, on a socket bound to a free loopback port."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))  # port 0: the OS picks a free port; no race with other processes
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="session")
def live_server_class() -> type[LiveServer]:
    """``LiveServer`` for tests that need a server with other settings (``with live_server_class(app) as s``)."""
    return LiveServer


@pytest.fixture(scope="session")
def live_server(service) -> Iterator[LiveServer]:
    """The full app (API + Gradio page) on http://127.0.0.1:<free port>, shut down after the session."""
    from agegender.serving.app import create_app

    with LiveServer(create_app(service=service)) as server:
        yield server
