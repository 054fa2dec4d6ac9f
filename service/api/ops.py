from __future__ import annotations

import os
import time

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from service import status
from service.api import access, schemas
from service.api.deps import AppSettings, Json, RequestMetrics, body
from service.bundle_holder import BundleHolder
from service.store_monitor import StoreMonitor

router = APIRouter(tags=["operations"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The worker is up (it may still be loading its bundle)."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "bundle not loaded or store not reached yet"}}
)
async def readyz(request: Request) -> Response:
    """200 once the bundle is loaded and the store has answered; 503 (Retry-After) until then.

    A store outage after that reports `"status": "degraded"` with 200: the endpoints that
    need only the bundle keep answering, so the worker stays in the load balancer."""
    holder: BundleHolder = request.app.state.holder
    stores: StoreMonitor = request.app.state.stores
    loaded = holder.current
    state = stores.state
    store = {"url": state.url, "state": "ok" if state.ok else "unavailable",
             "detail": state.detail}  # fmt: skip
    if loaded is None or not stores.ever_ok:
        detail = (
            holder.last_error or "bundle not loaded yet"
            if loaded is None
            else f"store not reached yet: {state.detail}"
        )
        return JSONResponse(
            {"status": "loading", "detail": detail, "store": store},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse(
        {
            "status": "ready" if state.ok else "degraded",
            "bundle_version": loaded.version,
            "store": store,
        }
    )


@router.get("/metrics", response_class=Response, dependencies=[Depends(access.METRICS)])
async def metrics(m: RequestMetrics) -> Response:
    """Prometheus metrics, added up over every worker of this server (open by default:
    SEGUE_AUTH_OPEN_METRICS)."""
    body, content_type = m.render()
    return Response(body, media_type=content_type)


@router.get("/v1/ops", response_model=schemas.OpsStatus, dependencies=[Depends(access.ADMIN)])
async def ops_status(request: Request, m: RequestMetrics, settings: AppSettings) -> Json:
    """For operators and the console's ops panel: the bundle this worker serves (version, age,
    models, recall@10 per index, the data's time span), the store's state, and the workers
    (configured, and live ones per bundle version). Answers while the store is down and before
    a bundle is loaded (then `bundle` is null and `bundle_error` says why)."""
    holder: BundleHolder = request.app.state.holder
    stores: StoreMonitor = request.app.state.stores
    loaded = holder.current
    return body(status.status(
        bundle=None if loaded is None else loaded.bundle,
        bundle_error=holder.last_error or "bundle not loaded yet",
        store=stores.state, workers=settings.workers, serving=m.workers_serving(),
        pid=os.getpid(), now=time.time(),
    ))  # fmt: skip
