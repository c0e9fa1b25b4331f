"""The JSON API through FastAPI's TestClient: results, every refusal status code, health, and the limits."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from agegender.serving.limits import Busy, InferencePool, ServeLimits, Timeout, format_bytes

FACE_KEYS = {
    "status",
    "age",
    "age_low",
    "age_high",
    "age_std",
    "gender",
    "gender_probability",
    "p_female",
    "box",
    "score",
    "landmarks",
    "message",
    "reasons",
    "quality",
    "interval_scale",
}
URL = "/api/v1/predict"


@pytest.fixture(scope="module")
def client(service) -> Iterator[TestClient]:
    from agegender.serving.app import create_app

    with TestClient(create_app(service=service)) as c:
        yield c


def limited_client(service, **limits) -> TestClient:
    """An app with other limits around the already loaded predictor (only the API router: quick to build)."""
    from fastapi import FastAPI

    from agegender.serving.api import build_router
    from agegender.serving.service import Service

    app = FastAPI()
    app.include_router(build_router(Service(service.predictor, ServeLimits(**limits))))
    return TestClient(app)


def test_astronaut_has_one_face(client: TestClient, astronaut_png: bytes) -> None:
    r = client.post(URL, files={"file": ("astronaut.png", astronaut_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 1 == len(body["faces"])
    assert body["image"] == {"width": 512, "height": 512}
    face = body["faces"][0]
    assert set(face) == FACE_KEYS
    assert face["status"] == "ok" and face["gender"] in ("male", "female")
    assert face["age_low"] <= face["age"] <= face["age_high"]
    assert face["reasons"] == [] and face["quality"] == 1.0
    x1, y1, x2, y2 = face["box"]
    assert x1 < 225 < x2 and y1 < 115 < y2  # the astronaut's face centre
    assert body["model"]["backbone"] == "scratch_cnn" and body["model"]["input_size"] == 64


def test_small_face_is_estimated_as_low_quality(client: TestClient, tiny_face_png: bytes) -> None:
    r = client.post(URL, files={"file": ("tiny.png", tiny_face_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    face = body["faces"][0]
    assert face["status"] == "low_quality" and face["reasons"] == ["small"] and face["age"] is not None
    assert "1 low quality (small" in body["message"]


@pytest.mark.parametrize("where", ["form", "query"])
def test_min_face_skips_the_small_face(client: TestClient, tiny_face_png: bytes, where: str) -> None:
    files = {"file": ("tiny.png", tiny_face_png, "image/png")}
    if where == "form":
        r = client.post(URL, files=files, data={"min_face": "40"})
    else:
        r = client.post(URL, files=files, params={"min_face": 40})
    assert r.status_code == 200, r.text
    body = r.json()
    face = body["faces"][0]
    assert face["status"] == "skipped" and face["age"] is None and face["reasons"] == ["small"]
    assert "min_face 40" in face["message"] and "1 skipped" in body["message"]


@pytest.mark.parametrize(
    "data, params", [({"min_quality": "2"}, {}), ({}, {"min_quality": "2"}), ({"min_face": "x"}, {})]
)
def test_invalid_filter_option_is_422(client: TestClient, astronaut_png: bytes, data: dict, params: dict) -> None:
    r = client.post(URL, files={"file": ("a.png", astronaut_png, "image/png")}, data=data, params=params)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_option" and ("min_quality" in body["detail"] or "min_face" in body["detail"])


def test_raw_body_takes_options_from_the_query(client: TestClient, tiny_face_png: bytes) -> None:
    r = client.post(URL, content=tiny_face_png, headers={"content-type": "image/png"}, params={"min_quality": 1})
    assert r.status_code == 200 and r.json()["faces"][0]["status"] == "skipped"


def test_raw_image_body_is_accepted(client: TestClient, astronaut_png: bytes) -> None:
    r = client.post(URL, content=astronaut_png, headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.json()["count"] == 1


def test_no_face_is_200_with_message(client: TestClient, grey_png: bytes) -> None:
    r = client.post(URL, files={"file": ("grey.png", grey_png, "image/png")})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 0 and body["faces"] == []
    assert "No face found" in body["message"]


@pytest.mark.parametrize("data", [b"definitely not an image", b""], ids=["garbage", "empty"])
def test_non_image_bytes_are_400(client: TestClient, data: bytes) -> None:
    r = client.post(URL, files={"file": ("photo.jpg", data, "image/jpeg")})
    assert r.status_code == 400
    assert r.json()["error"] == "not_an_image" and r.json()["detail"]


def test_wrong_file_type_is_415(client: TestClient) -> None:
    r = client.post(URL, files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 415 and "text/plain" in r.json()["detail"]


def test_wrong_request_type_is_415(client: TestClient) -> None:
    r = client.post(URL, json={"file": "photo.jpg"})
    assert r.status_code == 415


def test_missing_field(client: TestClient, astronaut_png: bytes) -> None:
    r = client.post(URL, files={"image": ("astronaut.png", astronaut_png, "image/png")})
    assert r.status_code in (400, 422)
    assert "'file'" in r.json()["detail"]


def test_health(client: TestClient) -> None:
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["model"]["backbone"] == "scratch_cnn"
    assert body["limits"]["concurrency"] >= 1


def test_page_is_served_at_root(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "<html" in r.text.lower()


def test_too_large_file_is_413(service, astronaut_png: bytes) -> None:
    with limited_client(service, max_upload_bytes=10_000) as c:
        r = c.post(URL, files={"file": ("astronaut.png", astronaut_png, "image/png")})
        assert r.status_code == 413 and r.json()["error"] == "too_large"
        r = c.post(URL, content=astronaut_png, headers={"Content-Type": "image/png"})
        assert r.status_code == 413


def test_too_many_pixels_is_413(service, astronaut_png: bytes) -> None:
    with limited_client(service, max_pixels=100_000) as c:
        r = c.post(URL, files={"file": ("astronaut.png", astronaut_png, "image/png")})
        assert r.status_code == 413 and "megapixels" in r.json()["detail"]


def test_too_many_pixels_is_refused_before_the_queue(service, astronaut_png: bytes) -> None:
    """The header says enough: an oversized image must not wait behind other requests for its 413."""
    from fastapi import FastAPI

    from agegender.serving.api import build_router
    from agegender.serving.service import Service

    limited = Service(service.predictor, ServeLimits(max_pixels=100_000))

    async def never(*args, **kwargs):
        raise AssertionError("an image refusable from its header reached the inference pool")

    limited.pool.run = never
    app = FastAPI()
    app.include_router(build_router(limited))
    with TestClient(app) as c:
        r = c.post(URL, files={"file": ("astronaut.png", astronaut_png, "image/png")})
    assert r.status_code == 413 and "megapixels" in r.json()["detail"]
    limited.close()


def test_animated_gif_says_the_first_frame_was_used(client: TestClient) -> None:
    from skimage.data import astronaut

    buf = io.BytesIO()
    frames = [Image.fromarray(astronaut()), *(Image.new("RGB", (512, 512), (g, g, g)) for g in (60, 160))]
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    r = client.post(URL, files={"file": ("anim.gif", buf.getvalue(), "image/gif")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["notes"] == ["first of 3 frames used"] and "first of 3 frames used" in body["message"]
    assert body["count"] == 1


def _post_raw(app, receive) -> list[dict]:
    """POST to the API at ASGI level with our own ``receive``: how a client that stalls or goes away looks."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"image/png"), (b"content-length", b"100000")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _api_app(service, **limits):
    from fastapi import FastAPI

    from agegender.serving.api import build_router
    from agegender.serving.service import Service

    app = FastAPI()
    app.include_router(build_router(Service(service.predictor, ServeLimits(**limits))))
    return app


def test_client_disconnect_logs_one_line(service, caplog: pytest.LogCaptureFixture) -> None:
    messages = [{"type": "http.request", "body": b"\x89PNG", "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    with caplog.at_level(logging.INFO):
        _post_raw(_api_app(service), receive)  # raised ClientDisconnect (a traceback in the log) before
    lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert not any(r.exc_info for r in caplog.records)


def test_stalled_upload_is_408(service) -> None:
    first = [{"type": "http.request", "body": b"\x89PNG", "more_body": True}]

    async def receive() -> dict:
        if first:
            return first.pop()
        await asyncio.sleep(30)  # the client stops sending
        return {"type": "http.disconnect"}

    start = time.perf_counter()
    sent = _post_raw(_api_app(service, read_timeout_s=0.2), receive)
    assert time.perf_counter() - start < 5
    assert sent[0]["status"] == 408
    assert b"upload_timeout" in b"".join(m.get("body", b"") for m in sent)


def test_timeout_is_504(service, astronaut_png: bytes) -> None:
    with limited_client(service, timeout_s=0.001) as c:
        r = c.post(URL, files={"file": ("astronaut.png", astronaut_png, "image/png")})
        assert r.status_code == 504 and r.json()["error"] == "timeout"


def test_pool_bounds_backlog_and_frees_slots() -> None:
    """One slot, no queue: a second call while the first runs is refused; after both, the pool is empty."""
    pool = InferencePool(ServeLimits(concurrency=1, queue_size=0, timeout_s=0.05))

    async def scenario() -> None:
        first = asyncio.ensure_future(pool.run(time.sleep, 0.3))
        await asyncio.sleep(0.02)
        with pytest.raises(Busy):
            await pool.run(time.sleep, 0)
        with pytest.raises(Timeout):
            await first
        assert pool.pending == 1  # the timed-out call still holds its thread until it really ends
        await asyncio.sleep(0.4)
        assert pool.pending == 0
        assert await pool.run(sum, [1, 2]) == 3

    asyncio.run(scenario())
    pool.shutdown()


def test_several_files_in_one_request_are_refused_not_dropped(client: TestClient, astronaut_png: bytes) -> None:
    two = [("file", ("a.png", astronaut_png, "image/png")), ("file", ("b.png", astronaut_png, "image/png"))]
    r = client.post(URL, files=two)
    assert r.status_code == 422 and r.json()["error"] == "invalid_option"
    assert "one image per request" in r.json()["detail"] and "2 files" in r.json()["detail"]


@pytest.mark.parametrize(("data", "params"), [({"min_qualty": "0.9"}, {}), ({}, {"foo": "1"})])
def test_unknown_options_are_refused_not_ignored(client: TestClient, astronaut_png: bytes, data, params) -> None:
    r = client.post(URL, files={"file": ("a.png", astronaut_png, "image/png")}, data=data, params=params)
    assert r.status_code == 422 and r.json()["error"] == "invalid_option"
    name = next(iter(data or params))
    assert f"Unknown option '{name}'" in r.json()["detail"] and "min_quality" in r.json()["detail"]


def test_a_malformed_multipart_body_is_a_bad_request_not_a_bad_image(client: TestClient) -> None:
    r = client.post(URL, content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    assert "multipart" in r.json()["detail"].lower()


def test_unknown_routes_and_methods_answer_in_the_api_error_shape(client: TestClient) -> None:
    r = client.get(URL)
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed" and "GET" in r.json()["detail"]
    r = client.post("/api/v1/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found" and "/api/v1/predict" in r.json()["detail"]


def test_the_size_limit_is_named_exactly_for_raw_and_multipart_bodies(service, astronaut_png: bytes) -> None:
    limit = len(astronaut_png) - 1
    with limited_client(service, max_upload_bytes=limit) as c:
        raw = c.post(URL, content=astronaut_png, headers={"Content-Type": "image/png"})
        form = c.post(URL, files={"file": ("a.png", astronaut_png, "image/png")})
    for r in (raw, form):
        assert r.status_code == 413
        assert f"the limit is {format_bytes(limit)}" in r.json()["detail"] and f"{limit:,} bytes" in r.json()["detail"]
    assert f"{len(astronaut_png):,} bytes" in form.json()["detail"]
