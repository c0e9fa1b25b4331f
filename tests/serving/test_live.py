"""Against a live uvicorn on 127.0.0.1: the HTTP API over a real socket and the Gradio client API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest


def test_api_over_http(live_server, astronaut_png: bytes) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        assert http.get("/api/v1/health").json()["status"] == "ok"
        r = http.post("/api/v1/predict", files={"file": ("astronaut.png", astronaut_png, "image/png")})
        assert r.status_code == 200 and r.json()["count"] == 1


def test_gradio_client_predict(live_server, astronaut_file: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(live_server.url, verbose=False, download_files=False)
    assert "/predict" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    drawing, table, message, payload = client.predict(handle_file(str(astronaut_file)), api_name="/predict")
    assert payload["count"] == 1 and payload["faces"][0]["status"] == "ok"
    assert "1 face found" in message
    assert table["headers"][:2] == ["#", "age"] and len(table["data"]) == 1
    assert drawing  # the annotated image (a file reference on the server)


def test_gradio_client_options(live_server, tiny_face_png: bytes, tmp_path: Path) -> None:
    """The page's min_face / min_quality controls are inputs of the same endpoint, validated as in the API."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(tiny_face_png)
    client = Client(live_server.url, verbose=False, download_files=False)
    _, table, message, payload = client.predict(handle_file(str(tiny)), api_name="/predict")
    assert payload["faces"][0]["status"] == "low_quality" and table["data"][0][-1].startswith("low quality: small")
    _, table, message, payload = client.predict(handle_file(str(tiny)), 40, 0, api_name="/predict")
    assert payload["faces"][0]["status"] == "skipped" and "1 skipped" in message
    with pytest.raises(AppError, match="min_quality must be between 0 and 1"):
        client.predict(handle_file(str(tiny)), 0, 2, api_name="/predict")


def test_gradio_client_reports_bad_file(live_server, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    bad = tmp_path / "photo.png"
    bad.write_bytes(b"this is text, not a PNG")
    client = Client(live_server.url, verbose=False, download_files=False)
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(bad)), api_name="/predict")
