"""The JSON API: ``POST /api/v1/predict`` and ``GET /api/v1/health``.

The body is read with a hard cap before it is parsed, so an oversized upload costs at most the limit in
memory; errors always come back as ``{"error": code, "detail": message}`` with a meaningful status code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from agegender.face_filter import FILTER_HELP, QualityFilter
from agegender.serving.limits import (
    InvalidOption,
    MalformedRequest,
    MissingFile,
    ServeLimits,
    ServingError,
    TooLarge,
    UnsupportedType,
    UploadTimeout,
    format_bytes,
)
from agegender.serving.service import Service

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: Room for multipart boundaries and part headers on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024
#: Declared file types accepted; anything else (text/plain, application/pdf, ...) is answered with 415.
ACCEPTED_FILE_TYPES = ("image/", "application/octet-stream")


def error_response(err: ServingError) -> JSONResponse:
    headers = {"Retry-After": "5"} if err.status == 503 else None
    return JSONResponse({"error": err.code, "detail": err.message}, status_code=err.status, headers=headers)


async def _read_capped(request: Request, cap: int, read_timeout_s: float, limit: int | None = None) -> bytes:
    """The body, refused (413) past ``cap`` bytes or (408) when it has not all arrived within ``read_timeout_s``:
    uvicorn has no body read timeout, so a stalled upload would otherwise hold its connection forever.
    ``limit``: the file size the messages name (``cap`` less the room for multipart headers)."""
    try:
        return await asyncio.wait_for(_read_body(request, cap, cap if limit is None else limit), read_timeout_s)
    except asyncio.TimeoutError:
        raise UploadTimeout(
            f"The upload did not arrive within {read_timeout_s:g} s; check the connection and try again."
        ) from None


async def _read_body(request: Request, cap: int, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise TooLarge(f"The upload is {format_bytes(int(declared))}; the limit is {format_bytes(limit)}.")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():  # also bounds chunked uploads, which have no Content-Length
        total += len(chunk)
        if total > cap:
            raise TooLarge(f"The upload exceeds the limit of {format_bytes(limit)}.")
        chunks.append(chunk)
    return b"".join(chunks)


async def _single_chunk(body: bytes) -> AsyncGenerator[bytes, None]:
    yield body
    yield b""


def _accepted(content_type: str | None) -> bool:
    ct = (content_type or "").split(";")[0].strip().lower()
    return not ct or ct.startswith(ACCEPTED_FILE_TYPES)


async def extract_image(request: Request, limits: ServeLimits) -> tuple[bytes, str, dict[str, str]]:
    """The uploaded image bytes, a name for messages and the text form fields, from multipart field ``file``
    (plus fields) or a raw image body (no fields)."""
    content_type = request.headers.get("content-type", "").lower()
    max_upload_bytes = limits.max_upload_bytes
    if content_type.startswith("multipart/form-data"):
        body = await _read_capped(
            request, max_upload_bytes + MULTIPART_OVERHEAD, limits.read_timeout_s, limit=max_upload_bytes
        )
        parser = MultiPartParser(
            request.headers, _single_chunk(body), max_files=4, max_fields=16, max_part_size=MULTIPART_OVERHEAD
        )
        try:
            form = await parser.parse()
        except MultiPartException as e:
            raise MalformedRequest(f"Malformed multipart body: {e.message}") from None
        try:
            files = [k for k, v in form.multi_items() if isinstance(v, UploadFile)]
            if len(files) > 1:
                raise InvalidOption(
                    f"Send one image per request; this one has {len(files)} files ({', '.join(files)}). For many "
                    "photos, send a request each, or use agegender predict / Predictor.predict_batch."
                )
            upload = form.get("file")
            if upload is None:
                raise MissingFile("Send the image as multipart form field 'file', e.g. curl -F file=@photo.jpg URL.")
            if not isinstance(upload, UploadFile):
                raise MissingFile("Form field 'file' must be a file upload, not a text value.")
            if not _accepted(upload.content_type):
                raise UnsupportedType(
                    f"Unsupported file type {upload.content_type!r}: upload an image "
                    "(JPEG, PNG, WebP, BMP, TIFF or GIF)."
                )
            data = await upload.read()
            name = upload.filename or "upload"
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        finally:
            await form.close()
        return data, name, fields
    if content_type.startswith(ACCEPTED_FILE_TYPES):  # raw body: curl -H 'Content-Type: image/jpeg' --data-binary @x
        return await _read_capped(request, max_upload_bytes, limits.read_timeout_s), "upload", {}
    if not content_type:
        raise MissingFile("Send the image as multipart form field 'file', e.g. curl -F file=@photo.jpg URL.")
    raise UnsupportedType(
        f"Unsupported content type {content_type.split(';')[0]!r}: send multipart/form-data "
        "with field 'file', or the image bytes with an image/* content type."
    )


def quality_filter(query: dict[str, str], fields: dict[str, str]) -> QualityFilter:
    """``min_face`` / ``min_quality`` from the query string or form fields (a form field wins); 422 if invalid or
    unknown: a misspelt ``min_qualty`` silently ignored would turn the filter off without a word."""
    unknown = sorted((set(query) | set(fields)) - set(FILTER_HELP))
    if unknown:
        raise InvalidOption(
            f"Unknown option {', '.join(map(repr, unknown))}; the options are "
            + ", ".join(sorted(FILTER_HELP))
            + " (and the image, in field 'file')."
        )
    try:
        return QualityFilter.from_values({**query, **fields})
    except ValueError as e:
        raise InvalidOption(f"{e}. Options: " + "; ".join(f"{k}: {v}" for k, v in FILTER_HELP.items())) from None


def build_router(service: Service) -> APIRouter:
    """The versioned API routes; mount them before the UI, which is served at ``/``."""
    router = APIRouter(prefix=API_PREFIX, tags=["api"])

    @router.post("/predict", summary="Estimate age and gender of every face in an image")
    async def predict(request: Request) -> Any:
        """Multipart field ``file`` (or a raw image body) -> faces, count, image size and model.

        Optional form or query fields ``min_face`` (px) and ``min_quality`` (0-1) mark faces below them
        ``skipped`` (no estimate); by default every face is estimated.
        """
        try:
            data, name, fields = await extract_image(request, service.limits)
            options = quality_filter(dict(request.query_params), fields)
            result = await service.predict_bytes(data, name, options=options)
        except ServingError as err:
            return error_response(err)
        except ClientDisconnect:  # routine (a closed tab, a cancelled curl): one line, not a traceback
            client = request.client.host if request.client else "client"
            log.info("%s disconnected before its upload to %s was complete", client, request.url.path)
            return Response(status_code=400)  # nobody reads it; returning keeps the traceback out of the log
        return {
            "faces": [f.to_dict() for f in result.faces],
            "count": len(result.faces),
            "message": result.message,
            "notes": result.notes,
            "image": {"width": result.width, "height": result.height},
            "model": service.info,
            "seconds": round(result.seconds, 4),
        }

    @router.get("/health", summary="Liveness, model and load")
    async def health() -> dict[str, Any]:
        return service.health()

    routes = {f"{API_PREFIX}/predict": "POST", f"{API_PREFIX}/health": "GET"}

    @router.api_route("/{rest:path}", methods=HTTP_METHODS, include_in_schema=False)
    async def other(request: Request, rest: str) -> JSONResponse:
        """Anything else under the API answers in its error shape (not the web page's 404, which is mounted at
        ``/`` and would otherwise take these paths)."""
        path = request.url.path
        if path in routes:
            return JSONResponse(
                {"error": "method_not_allowed", "detail": f"{request.method} is not allowed here: use {routes[path]}."},
                status_code=405,
                headers={"Allow": routes[path]},
            )
        known = " and ".join(f"{m} {p}" for p, m in routes.items())
        return JSONResponse({"error": "not_found", "detail": f"No route {path}; the API has {known}."}, status_code=404)

    return router
