"""Prometheus metrics, correct across the uvicorn workers of a pod (multiprocess mode).

In multiprocess mode every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR and
/metrics (served by any worker) adds them up. That variable must be set before prometheus_client
is first imported, which is why `segue serve` sets it before starting the workers and why this
module imports prometheus_client only inside `Metrics`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ANN_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


class Metrics:
    def __init__(self, *, multiprocess_dir: Path | None) -> None:
        if multiprocess_dir is not None:
            multiprocess_dir.mkdir(parents=True, exist_ok=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(multiprocess_dir)
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess_dir = multiprocess_dir
        # one registry per app; in multiprocess mode the samples live in files instead
        self.registry = CollectorRegistry()
        reg = None if multiprocess_dir is not None else self.registry
        self.requests = Histogram(
            "segue_request_seconds",
            "HTTP request latency by route",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.ann = Histogram(
            "segue_ann_seconds",
            "Annoy query latency by model and entity",
            ["model", "entity"],
            buckets=ANN_BUCKETS,
            registry=reg,
        )
        self.bundle_info = Gauge(
            "segue_bundle_info",
            "1 for the bundle version a worker serves (summed: workers serving it)",
            ["version"],
            registry=reg,
            multiprocess_mode="liveall",
        )
        # the served bundle's `created_at` (Unix time): the bundle's age is time() minus it;
        # livemax: while workers swap, the newest
        self.bundle_created = Gauge(
            "segue_bundle_created_timestamp_seconds",
            "When the served bundle was built (Unix time; the newest any live worker serves)",
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.bundle_refused = Counter(
            "segue_bundle_refused_total", "Bundles refused at load", registry=reg
        )
        self.radio_cache = Counter(
            "segue_radio_cache_total",
            "Radio-neighbour and related-artist reads by list and result (hit, miss)",
            ["list", "result"],
            registry=reg,
        )
        self.list_cache = Counter(
            "segue_list_cache_total",
            "Reads of the worker's in-memory lists by list (radio, related) and result (hit, miss)",
            ["list", "result"],
            registry=reg,
        )
        self.station_events = Counter(
            "segue_station_events_total",
            "Station events by type (created, track_served, thumbs_up, thumbs_down, skip, "
            "completed) and experiment variant",
            ["type", "variant"],
            registry=reg,
        )
        self.store_errors = Counter(
            "segue_store_errors_total",
            "Store calls that failed (store down or timed out)",
            registry=reg,
        )

        # livemin: 0 as soon as one worker finds the store down
        self.store_up = Gauge(
            "segue_store_up",
            "1 while the store answers (min over live workers: 0 if one of them finds it down)",
            registry=reg,
            multiprocess_mode="livemin",
        )

    def cache_read(self, listing: str, *, hit: bool) -> None:
        """One read of a radio-neighbour or related-artist list: from the store's cache or not."""
        self.radio_cache.labels(listing, "hit" if hit else "miss").inc()

    def list_cache_read(self, listing: str, hit: bool) -> None:
        """One read of the worker's in-memory lists (`ListCache`)."""
        self.list_cache.labels(listing, "hit" if hit else "miss").inc()

    def response_cache_read(self, hit: bool) -> None:
        """One read of the worker's rendered answers (`ResponseCache`), as listing `rendered`."""
        self.list_cache.labels("rendered", "hit" if hit else "miss").inc()

    def observe_ann(self, model: str, entity: str, seconds: float) -> None:
        self.ann.labels(model, entity).observe(seconds)

    def serving(self, *, version: str, previous: str | None, created: float | None) -> None:
        if previous is not None:
            self.bundle_info.labels(previous).set(0)
        self.bundle_info.labels(version).set(1)
        if created is not None:
            self.bundle_created.set(created)

    def workers_serving(self) -> dict[str, int]:
        """Live workers per bundle version they serve (from `segue_bundle_info`)."""
        from prometheus_client import CollectorRegistry, multiprocess

        registry = self.registry
        if self.multiprocess_dir is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        out: dict[str, int] = {}
        for family in registry.collect():
            if family.name != "segue_bundle_info":
                continue
            for sample in family.samples:
                if sample.value > 0:
                    version = sample.labels["version"]
                    out[version] = out.get(version, 0) + int(sample.value)
        return out

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def worker_exit(self) -> None:
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), path=str(self.multiprocess_dir))


def route_label(scope: dict[str, Any]) -> str:
    """The route template (/v1/tracks/{track_id}), not the raw path, so labels stay few."""
    route = scope.get("route")
    # path_format drops the convertors: /v1/tracks/{track_id}, not /v1/tracks/{track_id:id}
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"
