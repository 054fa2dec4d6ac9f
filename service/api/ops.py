from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service.bundles import BundleHolder
from service.metrics import Metrics


def router() -> APIRouter:
    r = APIRouter(tags=["operations"])

    @r.get("/livez")
    async def livez() -> dict[str, str]:
        """The worker is up (it may still be loading its bundle)."""
        return {"status": "ok"}

    @r.get("/readyz", responses={503: {"description": "no bundle loaded yet"}})
    async def readyz(request: Request) -> Response:
        """200 once a bundle is loaded; 503 (with Retry-After) until then."""
        holder: BundleHolder = request.app.state.holder
        loaded = holder.current
        if loaded is None:
            return JSONResponse(
                {"status": "loading", "detail": holder.last_error or "bundle not loaded yet"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return JSONResponse({"status": "ready", "bundle_version": loaded.version})

    @r.get("/metrics", response_class=Response)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics, added up over every worker of this server."""
        m: Metrics = request.app.state.metrics
        body, content_type = m.render()
        return Response(body, media_type=content_type)

    return r
