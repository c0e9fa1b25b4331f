"""The Gradio page loaded in the background (the API answers meanwhile), or not at all (--no-demo)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from agegender.serving import demo_mount
from agegender.serving.app import ServeConfig, create_app
from agegender.serving.service import Service

URL = "/api/v1/predict"


@pytest.fixture
def own_service(service) -> Iterator[Service]:
    """The session's predictor behind a service of its own: these tests change its demo state."""
    svc = Service(service.predictor, service.limits)
    yield svc
    svc.close()


def _wait_for(client: TestClient, state: str, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        health = client.get("/api/v1/health").json()
        if health["demo"] == state:
            return health
        time.sleep(0.2)
    raise AssertionError(f"demo never became {state!r}; last health: {health}")


def test_api_answers_while_the_demo_loads(
    own_service: Service, astronaut_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = demo_mount.build_and_mount

    def slow_build(app, service):
        assert release.wait(60), "the test never released the demo build"
        return real(app, service)

    monkeypatch.setattr(demo_mount, "build_and_mount", slow_build)
    with TestClient(create_app(ServeConfig(demo="background"), service=own_service)) as client:
        assert client.get("/api/v1/health").json()["demo"] == "loading"
        page = client.get("/")
        assert page.status_code == 503 and "demo is loading" in page.text and 'http-equiv="refresh"' in page.text
        r = client.post(URL, files={"file": ("astronaut.png", astronaut_png, "image/png")})
        assert r.status_code == 200 and r.json()["count"] == 1
        release.set()
        _wait_for(client, "ready")
        page = client.get("/")
        assert page.status_code == 200 and "gradio" in page.text.lower()
        assert client.get("/config").status_code == 200  # Gradio's own routes answer under the mount
        assert client.post(URL, files={"file": ("a.png", astronaut_png, "image/png")}).status_code == 200


def test_a_demo_that_fails_to_load_leaves_the_api_serving(
    own_service: Service, astronaut_png: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(app, service):
        raise RuntimeError("gradio is broken")

    monkeypatch.setattr(demo_mount, "build_and_mount", broken)
    with TestClient(create_app(ServeConfig(demo="background"), service=own_service)) as client:
        _wait_for(client, "failed")
        page = client.get("/")
        assert page.status_code == 503 and "could not be loaded" in page.text
        assert client.post(URL, files={"file": ("a.png", astronaut_png, "image/png")}).status_code == 200


def test_no_demo_serves_the_api_only(own_service: Service) -> None:
    with TestClient(create_app(ServeConfig(demo="off"), service=own_service)) as client:
        assert client.get("/api/v1/health").json()["demo"] == "off"
        page = client.get("/")
        assert page.status_code == 200 and "API only" in page.text


def test_unknown_demo_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="demo must be one of"):
        ServeConfig(demo="later")


def test_the_app_module_does_not_import_gradio() -> None:
    """Gradio (seconds to import) is imported only when the demo is built."""
    code = "import sys, agegender.serving.app; sys.exit('gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_demo_mode_from_the_environment() -> None:
    assert ServeConfig.from_env({}).demo == "now"
    assert ServeConfig.from_env({"AGEGENDER_DEMO": "off"}).demo == "off"
