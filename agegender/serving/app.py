"""The web app: FastAPI with the JSON API under ``/api/v1`` and the Gradio page mounted at ``/``.

One process serves both, so the demo and the API share a single loaded model, one set of limits and one
bounded inference pool. Build it with :func:`create_app`; run it with :func:`serve` (used by
``agegender serve`` and by the repository's ``app.py`` for Hugging Face Spaces). ``agegender serve`` loads the
Gradio page in the background (see ``demo_mount.py``) so the API is ready seconds sooner, or not at all
(``--no-demo``).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from a server that may be offline
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import contextlib
import errno
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import FastAPI

from agegender import __version__
from agegender.serving.api import build_router
from agegender.serving.demo_mount import DEMO_MODES, BackgroundDemo, build_and_mount, status_page
from agegender.serving.limits import MB, ServeLimits
from agegender.serving.memory import limit_arena_growth
from agegender.serving.service import Service

log = logging.getLogger(__name__)


@dataclass
class ServeConfig:
    """How to load the model and which limits to apply; the CLI flags and environment map onto this."""

    model: str | None = None  # model folder or .ckpt; None: the shipped default model
    detector: str = "auto"
    backend: str = "auto"
    threads: int | None = None  # torch/onnx threads per model call
    limits: ServeLimits = field(default_factory=ServeLimits)
    demo: str = "now"  # the Gradio page: "now" (before serving), "background" (API first) or "off" (API only)

    def __post_init__(self) -> None:
        if self.demo not in DEMO_MODES:
            raise ValueError(f"demo must be one of {', '.join(DEMO_MODES)}, not {self.demo!r}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeConfig:
        """Settings from ``AGEGENDER_*`` variables: how a Hugging Face Space (no command line) is configured."""
        env = dict(os.environ if env is None else env)
        defaults = ServeLimits()

        def num(name: str, default: float, kind: type = int) -> float:
            value = env.get(name)
            return kind(value) if value not in (None, "") else default

        limits = ServeLimits(
            max_upload_bytes=int(num("AGEGENDER_MAX_UPLOAD_MB", defaults.max_upload_bytes / MB, float) * MB),
            max_pixels=int(num("AGEGENDER_MAX_PIXELS", defaults.max_pixels)),
            timeout_s=float(num("AGEGENDER_TIMEOUT", defaults.timeout_s, float)),
            concurrency=int(num("AGEGENDER_CONCURRENCY", defaults.concurrency)),
            queue_size=int(num("AGEGENDER_QUEUE_SIZE", defaults.queue_size)),
            read_timeout_s=float(num("AGEGENDER_READ_TIMEOUT", defaults.read_timeout_s, float)),
        )
        threads = env.get("AGEGENDER_THREADS")
        return cls(
            model=env.get("AGEGENDER_MODEL") or None,
            detector=env.get("AGEGENDER_DETECTOR", "auto"),
            demo=env.get("AGEGENDER_DEMO") or "now",
            backend=env.get("AGEGENDER_BACKEND", "auto"),
            threads=int(threads) if threads else None,
            limits=limits,
        )


def create_app(config: ServeConfig | None = None, service: Service | None = None) -> FastAPI:
    """Build the FastAPI app. Pass ``service`` to reuse an already loaded model (tests, notebooks)."""
    config = config or ServeConfig()
    owns_service = service is None
    if service is None:
        service = Service.load(
            config.model, config.limits, detector=config.detector, backend=config.backend, threads=config.threads
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = app.state.demo_loader
        if loader is not None:
            loader.start()
        yield
        if loader is not None:
            await loader.stop()
        if owns_service:
            service.close()

    app = FastAPI(
        title="agegender",
        version=__version__,
        lifespan=lifespan,
        description="Age and gender estimation from face photos. The web demo is at `/`.",
    )
    app.state.service = service
    app.state.demo = None
    # API routes first: the Gradio app mounted at "/" would otherwise catch these paths.
    app.include_router(build_router(service))
    app.state.demo_loader = BackgroundDemo(app, service) if config.demo == "background" else None
    if config.demo == "now":
        build_and_mount(app, service)
        service.demo = "ready"
    elif config.demo == "off":
        service.demo = "off"
        app.add_api_route("/", lambda: status_page("off"), include_in_schema=False)
    return app


def check_port(host: str, port: int) -> None:
    """Raise :class:`~agegender.errors.ConfigError` if ``host:port`` cannot be listened on (in use, not an address
    of this machine, a privileged port)."""
    import socket

    from agegender.errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: not a known address ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a closed port is free
        try:
            probe.bind(address)
        except OSError as e:
            hint = " (another server is there: stop it or choose another --port)" if e.errno == errno.EADDRINUSE else ""
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}{hint}") from None


def serve(
    config: ServeConfig | None = None, host: str = "127.0.0.1", port: int = 7860, log_level: str = "info"
) -> None:
    """Load the model and serve until interrupted (blocking). A port that cannot be listened on is a
    :class:`~agegender.errors.ConfigError` before the model loads (uvicorn would only log it, then exit 3)."""
    import uvicorn

    check_port(host, port)
    limit_arena_growth()  # the server owns its process: big request buffers go back to the system when freed
    config = config or ServeConfig()
    app = create_app(config)
    what = "API" if config.demo == "off" else "demo"
    log.info("agegender %s on http://%s:%d/  (API: POST http://%s:%d/api/v1/predict)", what, host, port, host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
