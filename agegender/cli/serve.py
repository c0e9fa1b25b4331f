"""``agegender serve``: the web demo and JSON API on one port (FastAPI + Gradio, run by uvicorn)."""

from __future__ import annotations

import argparse

from agegender.cli.argtypes import DETECTOR_HELP, non_negative_int, port, positive_float, positive_int
from agegender.errors import EXIT_CODES_HELP, missing_extra
from agegender.serving.limits import MB, ServeLimits

_DEFAULTS = ServeLimits()


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="web demo and HTTP API",
        description="Serve the web demo at / and the JSON API at /api/v1/predict. Binds to 127.0.0.1 unless "
        "--host says otherwise (use 0.0.0.0 to accept connections from other machines).",
        epilog=EXIT_CODES_HELP,
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=7860)
    p.add_argument("--model", default=None, help="model folder or .ckpt (default: the shipped model)")
    p.add_argument("--detector", default="auto", help=DETECTOR_HELP)
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx"])
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads per model call")
    p.add_argument(
        "--max-upload-mb",
        type=positive_float,
        default=_DEFAULTS.max_upload_bytes / MB,
        help="largest accepted upload in MiB (default %(default)g)",
    )
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=_DEFAULTS.max_pixels,
        help="largest accepted image in pixels, width x height (default %(default)d)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=_DEFAULTS.timeout_s,
        help="seconds before a request is abandoned with 504 (default %(default)g)",
    )
    p.add_argument(
        "--read-timeout",
        type=positive_float,
        default=_DEFAULTS.read_timeout_s,
        help="seconds an API upload may take to arrive; a stalled one is answered 408 (default %(default)g)",
    )
    p.add_argument(
        "--concurrency",
        type=positive_int,
        default=_DEFAULTS.concurrency,
        help="model calls run at once (default %(default)d)",
    )
    p.add_argument(
        "--queue-size",
        type=non_negative_int,
        default=_DEFAULTS.queue_size,
        help="requests allowed to wait; more are refused with 503 (default %(default)d)",
    )
    p.add_argument(
        "--no-demo",
        action="store_true",
        help="serve the JSON API only: no web page, no Gradio import (faster start, less memory)",
    )
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)


def config_from_args(args: argparse.Namespace):
    """The :class:`~agegender.serving.app.ServeConfig` the flags describe (separate so it can be tested)."""
    from agegender.serving.app import ServeConfig

    limits = ServeLimits(
        max_upload_bytes=int(args.max_upload_mb * MB),
        max_pixels=args.max_pixels,
        timeout_s=args.timeout,
        concurrency=args.concurrency,
        queue_size=args.queue_size,
        read_timeout_s=args.read_timeout,
    )
    return ServeConfig(
        model=args.model,
        detector=args.detector,
        backend=args.backend,
        threads=args.threads,
        limits=limits,
        # the API answers while the page (Gradio: seconds to import) loads in the background
        demo="off" if args.no_demo else "background",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from agegender.serving.app import serve
    except ModuleNotFoundError as e:
        raise (missing_extra(e, "serving") or e) from None
    serve(config_from_args(args), host=args.host, port=args.port, log_level=args.log_level)
    return 0
