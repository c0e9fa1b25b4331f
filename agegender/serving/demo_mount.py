"""Mounting the Gradio demo at ``/``, now or in the background, so the API does not wait for Gradio.

Importing Gradio takes 2.7-4.3 s and about 100 MB on the 2-core machine, more than the rest of the server's
start together. With ``demo="background"`` the server answers ``/api/v1/*`` as soon as the model is loaded; the
root page says the demo is loading (503, refreshed every few seconds) until the demo is mounted, and
``/api/v1/health`` reports ``demo``: ``loading``, ``ready``, ``failed`` or ``off``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.routing import Mount, Route

from agegender.serving.examples import PACKAGE_DIR, example_paths
from agegender.serving.service import Service

log = logging.getLogger(__name__)

DEMO_MODES = ("now", "background", "off")

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>agegender</title>{refresh}</head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto">
<h1>Age &amp; gender estimation</h1><p>{text}</p>
<p>The API is ready: <code>curl -F file=@photo.jpg {{base}}api/v1/predict</code> (see <a href="docs">/docs</a>).</p>
</body></html>"""
_TEXTS = {
    "loading": "The web demo is loading; this page reloads by itself in a few seconds.",
    "failed": "The web demo could not be loaded (see the server log).",
    "off": "This server runs the API only (started with --no-demo).",
}


def status_page(state: str, base: str = "/") -> HTMLResponse:
    """The root page while there is no demo: 503 with a refresh while it loads, else 200 (off) or 503 (failed)."""
    refresh = '<meta http-equiv="refresh" content="3">' if state == "loading" else ""
    html = _PAGE.format(refresh=refresh, text=_TEXTS[state]).replace("{base}", base)
    code = 200 if state == "off" else 503
    return HTMLResponse(html, status_code=code, headers={"Retry-After": "3"} if code == 503 else None)


def build_and_mount(app: FastAPI, service: Service) -> Any:
    """Import Gradio, build the page and mount it at ``/``; returns the mounted Gradio app (blocking, slow)."""
    import gradio as gr

    from agegender.serving.ui import CSS, build_demo, theme

    limits = service.limits
    demo = build_demo(service)
    demo.queue(default_concurrency_limit=limits.concurrency, max_size=limits.queue_size)
    app.state.demo = demo
    allowed = [str(p.parent) for p in example_paths()[:1]] or [str(PACKAGE_DIR)]
    gr.mount_gradio_app(
        app,
        demo,
        path="/",
        max_file_size=limits.max_upload_bytes,
        allowed_paths=allowed,
        theme=theme(),
        css=CSS,
        footer_links=["api", "gradio"],
        show_error=True,
        ssr_mode=False,
        mcp_server=False,
        run_history=False,
    )
    mounted = app.router.routes[-1]
    assert isinstance(mounted, Mount) and mounted.path == "", "mount_gradio_app appends its Mount at /"
    return mounted.app


class BackgroundDemo:
    """Builds and mounts the demo off the event loop after the server has started; the API serves meanwhile."""

    def __init__(self, app: FastAPI, service: Service) -> None:
        self.app = app
        self.service = service
        self._task: asyncio.Task | None = None
        self._stack = contextlib.AsyncExitStack()

        async def root(request: Any) -> HTMLResponse:
            return status_page(service.demo, str(request.base_url))

        self._placeholder = Route("/", root, methods=["GET", "HEAD"], include_in_schema=False)
        app.router.routes.append(self._placeholder)
        service.demo = "loading"

    def start(self) -> None:
        """Start loading (call on the running event loop, e.g. in the app's lifespan)."""
        self._task = asyncio.get_running_loop().create_task(self._load())

    async def _serve_one_request(self) -> None:
        """GET /api/v1/health in-process, so the request path's lazy imports are done before Gradio's import
        starts: a first request that needs a module the import thread holds waits for the whole import."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/api/v1/health",
            "raw_path": b"/api/v1/health",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"localhost")],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 80),
            "state": {},
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        await self.app(scope, receive, send)

    async def _load(self) -> None:
        try:
            await self._serve_one_request()
            gradio_app = await asyncio.to_thread(build_and_mount, self.app, self.service)
            self.app.router.routes.remove(self._placeholder)  # the Gradio Mount at / now answers the root
            # mount_gradio_app hooks Gradio's start-up into the app's lifespan, which has already run: do it here.
            await self._stack.enter_async_context(gradio_app.router.lifespan_context(gradio_app))
            blocks = gradio_app.get_blocks()
            blocks.run_startup_events()
            await blocks.run_extra_startup_events()
        except Exception:
            log.exception("the web demo could not be loaded; the API keeps serving")
            self.service.demo = "failed"
            return
        self.service.demo = "ready"
        log.info("web demo ready at /")

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._stack.aclose()
