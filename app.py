"""Hugging Face Space entry point: ``python app.py`` serves the demo and API on 0.0.0.0:7860.

Configured by environment variables (a Space has no command line): AGEGENDER_MODEL, AGEGENDER_DETECTOR,
AGEGENDER_MAX_UPLOAD_MB, AGEGENDER_MAX_PIXELS, AGEGENDER_TIMEOUT, AGEGENDER_CONCURRENCY, AGEGENDER_QUEUE_SIZE;
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (set by Spaces) choose the address. Module-level ``app`` (FastAPI)
and ``demo`` (the Gradio Blocks) are what hosting tools look for.
"""

from __future__ import annotations

import os

from agegender.serving.app import ServeConfig, create_app

app = create_app(ServeConfig.from_env())
demo = app.state.demo

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app,
        host=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        timeout_graceful_shutdown=5,
    )
