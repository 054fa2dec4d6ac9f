"""The web console: a static page (HTML, CSS and plain JavaScript in `static/`, no build step,
nothing loaded from elsewhere) that the app serves at /console. The page calls the /v1 API from
the browser, sending the bearer token a person pastes into it; the page itself needs none."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
PATH = "/console"


def install(app: FastAPI) -> None:
    """Mounts the console at /console (/console redirects to /console/), and / redirects there."""
    app.mount(PATH, StaticFiles(directory=STATIC, html=True), name="console")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PATH}/")
