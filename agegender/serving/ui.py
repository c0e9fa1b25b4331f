"""The Gradio page: photo in (upload, paste or webcam), annotated photo and a table of faces out.

The event handler is async and hands the model call to the service's bounded thread pool, so the page
stays responsive and shares the same limits as the JSON API; refusals are shown as error toasts with the
same messages the API returns.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from agegender.face_filter import FILTER_HELP, QualityFilter
from agegender.serving.about import model_facts
from agegender.serving.drawing import TABLE_HEADERS, annotate, table_rows
from agegender.serving.examples import example_paths
from agegender.serving.limits import NotAnImage, ServingError, check_upload_size
from agegender.serving.service import Service, model_description

TITLE = "Age & gender estimation"
CSS = """
#status p { font-size: 1.05rem; margin: 0; }
/* Headers wrap between words only ("80% / interval"), never inside one ("P(gen / der)"). */
#faces-table th, #faces-table th * { word-break: normal !important; overflow-wrap: normal !important; hyphens: none; }
/* A phone (390 px): proportional type, smaller, with less padding, so all seven columns, status included, fit. */
@media (max-width: 480px) {
  #faces-table { --font-mono: var(--font); --input-text-size: 11px; --size-2: 2px; --size-3: 2px; }
  #faces-table .header-content { gap: 0 !important; }
}
"""


def theme() -> gr.themes.Base:
    """Default look with system fonts: the stock theme would fetch Google Fonts, and the server may be offline."""
    return gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "Consolas", "monospace"]
    )


def _payload_source(payload: Any) -> tuple[bytes | Path, str, int]:
    """(the bytes, or the cached file holding them; a name for messages; the size) of an Image payload."""
    if isinstance(payload, str):
        payload = {"path": payload}
    if not isinstance(payload, dict):
        raise NotAnImage("No image was received.")
    name = Path(payload.get("orig_name") or payload.get("path") or "upload").name
    url = payload.get("url") or ""
    if not payload.get("path") and url.startswith("data:"):  # base64 image sent by an API client
        try:
            data = base64.b64decode(url.split(",", 1)[1], validate=False)
        except (IndexError, ValueError):
            raise NotAnImage("The data URL does not contain base64 image data.") from None
        return data, name, len(data)
    path = payload.get("path")
    if not path:
        raise NotAnImage("No image was received.")
    try:
        return Path(path), name, Path(path).stat().st_size
    except OSError:
        raise NotAnImage("The uploaded file could not be read; upload it again.") from None


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame([], columns=TABLE_HEADERS)


def _cleared() -> tuple[None, pd.DataFrame, str, None]:
    return None, _empty_table(), "", None


def build_demo(service: Service) -> gr.Blocks:
    """The Blocks UI for ``service``; call ``.queue(...)`` (done by :func:`agegender.serving.app.create_app`)."""

    async def predict(
        photo: dict[str, Any] | None, min_face: float | None = 0.0, min_quality: float | None = 0.0
    ) -> tuple[Image.Image | None, pd.DataFrame, str, dict[str, Any]]:
        """Estimate age and gender of each face in the photo; returns drawing, table, message and JSON.

        Runs with ``preprocess=False``: the handler gets Gradio's file payload (already checked and moved
        into Gradio's upload cache) and does the size, pixel and decode checks itself, so a bad file gets
        the same clear message as in the JSON API instead of a PIL traceback. ``min_face`` / ``min_quality``
        skip faces below them, as in the API.
        """
        if not photo:
            return None, _empty_table(), "Upload a photo, paste one or take one with the webcam.", {}
        try:
            options = QualityFilter.from_values({"min_face": min_face, "min_quality": min_quality})
        except ValueError as e:
            raise gr.Error(str(e), title="Invalid option", duration=20, print_exception=False) from None
        try:
            source, name, size = _payload_source(photo)
            check_upload_size(size, service.limits)
            data = source if isinstance(source, bytes) else await asyncio.to_thread(source.read_bytes)
            result = await service.predict_bytes(data, name, keep_image=True, options=options)
        except OSError:
            raise gr.Error(
                "The uploaded file could not be read; upload it again.",
                title="Upload failed",
                duration=20,
                print_exception=False,
            ) from None
        except ServingError as err:
            raise gr.Error(err.message, title=err.title, duration=20, print_exception=False) from None
        drawing = await asyncio.to_thread(annotate, result.image, result.faces, image_scale=result.image_scale)
        payload = {
            "faces": [f.to_dict() for f in result.faces],
            "count": len(result.faces),
            "message": result.message,
            "notes": result.notes,
            "image": {"width": result.width, "height": result.height},
        }
        table = pd.DataFrame(table_rows(result.faces), columns=TABLE_HEADERS)
        return drawing, table, f"**{result.message}**", payload

    limits = service.limits
    with gr.Blocks(title=f"{TITLE} · agegender", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\nUpload a photo: every face is found, boxed and labelled with an age estimate "
            "(with its 80% interval) and a gender. Pink: female, blue: male, amber dashed with “?”: low quality "
            "(less reliable), grey: skipped."
        )
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(
                    label="Photo",
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "clipboard", "webcam"],
                    elem_id="photo",
                    height=420,
                )
                run = gr.Button("Estimate age & gender", variant="primary", elem_id="run")
                with gr.Accordion("Options", open=False):
                    min_face = gr.Number(
                        value=0, minimum=0, precision=0, label="Minimum face size (px)", info=FILTER_HELP["min_face"]
                    )
                    min_quality = gr.Slider(
                        0, 1, value=0, step=0.05, label="Minimum quality", info=FILTER_HELP["min_quality"]
                    )
                examples_box = gr.Column()  # filled below, once the outputs exist
            with gr.Column(scale=1):
                result = gr.Image(
                    label="Faces",
                    type="pil",
                    format="jpeg",
                    interactive=False,
                    elem_id="annotated",
                    height=420,
                    buttons=["download", "fullscreen"],
                )
                status = gr.Markdown(elem_id="status")
                table = gr.Dataframe(
                    value=_empty_table(),
                    headers=TABLE_HEADERS,
                    label="Faces found",
                    interactive=False,
                    elem_id="faces-table",
                    wrap=True,
                )
                with gr.Accordion("JSON", open=False):
                    raw = gr.JSON(label="Faces as in the HTTP API response", elem_id="raw-json")
        with gr.Accordion("About the model and the limits", open=True):
            gr.Markdown(
                model_facts(getattr(service, "model_dir", None)),
                elem_id="model-facts",
            )
            gr.Markdown(
                model_description(service.info) + "\n\n**Limits:** " + limits.describe() + " "
                f"At most {limits.concurrency} photos are processed at once; others wait in a queue. "
                "The same model answers the JSON API at `POST /api/v1/predict` (see the "
                "*Use via API* link for the Python client)."
            )
        outputs = [result, table, status, raw]
        # Clear the previous result first (queue=False: answered at once), so an error is never shown
        # next to the result of an earlier photo. Named API endpoint: /predict (gradio_client).
        gr.on(
            triggers=[photo.input, run.click],
            fn=_cleared,
            outputs=outputs,
            queue=False,
            api_visibility="private",
            show_progress="hidden",
        ).then(
            predict,
            inputs=[photo, min_face, min_quality],
            outputs=outputs,
            api_name="predict",
            show_progress="full",
            preprocess=False,
        )
        paths = example_paths()
        if paths:
            with examples_box:
                examples = gr.Examples(
                    examples=[[str(p)] for p in paths],
                    inputs=[photo],
                    outputs=outputs,
                    cache_examples=False,
                    label="Examples (click one)",
                    examples_per_page=8,
                )
            # Run on click with the options as set (Examples' own run_on_click would pass the photo only).
            examples.load_input_event.then(
                predict,
                inputs=[photo, min_face, min_quality],
                outputs=outputs,
                api_visibility="undocumented",
                preprocess=False,
            )
    return demo
