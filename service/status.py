"""What an operator asks a running server: the bundle it serves (a summary of its manifest),
the store's state and its workers. Plain Python; `GET /v1/ops` and the console's ops panel
show it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from indexes.bundle import Bundle
from indexes.bundle.layout import Manifest
from service.store_monitor import StoreState


def created_timestamp(manifest: Manifest) -> float | None:
    """The manifest's `created_at` as Unix time; None when it has none (or not ISO 8601)."""
    try:
        created = dt.datetime.fromisoformat(manifest.created_at)
    except ValueError:
        return None
    if created.tzinfo is None:  # the pipeline writes UTC ("...Z"); a bare time is taken as UTC
        created = created.replace(tzinfo=dt.UTC)
    return created.timestamp()


def bundle_summary(bundle: Bundle, *, now: float) -> dict[str, Any]:
    """Version, age, catalogue size, the data's time span, and per index its model, size and
    measured recall@10 (None where the build did not measure it)."""
    m = bundle.typed_manifest
    created = created_timestamp(m)
    indexes = [
        {
            "model": e.model,
            "entity": e.entity,
            "dims": e.dims,
            "n_items": e.n_items,
            "n_trees": e.n_trees,
            "search_k": e.search_k,
            "recall_at_10": e.tuning.recall_at_10,
            "recall_target": e.tuning.recall_target,
            "recall_target_met": e.tuning.recall_target_met,
            "ms_per_query": e.tuning.ms_per_query,
        }
        for e in m.indexes
    ]
    return {
        "version": m.bundle_version,
        "format_version": m.format_version,
        "created_at": m.created_at or None,
        "age_seconds": None if created is None else round(max(now - created, 0.0), 1),
        "source": m.source.get("name"),
        "entities": dict(m.entities),
        "models": sorted({e.model for e in m.indexes}),
        "indexes": indexes,
        "time": None if m.time is None else _span(m),
        "variants": sorted(m.variants),
    }


def status(
    *,
    bundle: Bundle | None,
    bundle_error: str | None,
    store: StoreState,
    workers: int,
    serving: dict[str, int],
    pid: int,
    now: float,
) -> dict[str, Any]:
    """The whole status: `bundle` None while this worker has none (then `bundle_error` says
    why); `workers` the configured count, `serving` the live workers per bundle version."""
    return {
        "bundle": None if bundle is None else bundle_summary(bundle, now=now),
        "bundle_error": bundle_error if bundle is None else None,
        "store": {
            "url": store.url,
            "state": "ok" if store.ok else "unavailable",
            "detail": store.detail,
            "since": _iso(store.since),
        },
        "workers": {
            "configured": workers,
            "serving": dict(sorted(serving.items())),
            "answering_pid": pid,
        },
    }


def _span(m: Manifest) -> dict[str, str]:
    assert m.time is not None
    return {"first_play": m.time.first_play, "last_play": m.time.last_play, "as_of": m.time.as_of}


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
