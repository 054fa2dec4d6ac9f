"""What `/v1/ops` reports (service/status.py), without HTTP."""

from __future__ import annotations

import dataclasses

from indexes.bundle import open_bundle
from indexes.pipeline import BuildResult
from service import status
from service.store_monitor import StoreState


def test_status_summarises_the_bundle_store_and_workers(tiny_build: BuildResult) -> None:
    store = StoreState(url="sqlite:///x.db", ok=False, detail="disk I/O error", since=0.0)
    with open_bundle(tiny_build.path) as bundle:
        m = bundle.typed_manifest
        created = status.created_timestamp(m)
        assert created is not None
        out = status.status(bundle=bundle, bundle_error="ignored", store=store, workers=4,
                            serving={"v2": 1, "v1": 3}, pid=7, now=created + 90)  # fmt: skip
    b = out["bundle"]
    assert b["version"] == m.bundle_version and b["age_seconds"] == 90
    assert b["entities"] == m.entities and b["models"] == sorted({e.model for e in m.indexes})
    assert [(i["model"], i["entity"], i["recall_at_10"]) for i in b["indexes"]] == [
        (e.model, e.entity, e.tuning.recall_at_10) for e in m.indexes
    ]
    assert all(0 < i["recall_at_10"] <= 1 for i in b["indexes"])  # the build measured them
    assert m.time is not None and b["time"]["first_play"] == m.time.first_play
    assert out["bundle_error"] is None
    assert out["store"] == {"url": "sqlite:///x.db", "state": "unavailable",
                            "detail": "disk I/O error", "since": "1970-01-01T00:00:00Z"}  # fmt: skip
    assert out["workers"] == {"configured": 4, "serving": {"v1": 3, "v2": 1}, "answering_pid": 7}


def test_status_without_a_bundle_says_why() -> None:
    store = StoreState(url="u", ok=True, detail="ok", since=0.0)
    out = status.status(bundle=None, bundle_error="no current in /b", store=store, workers=1,
                        serving={}, pid=1, now=0.0)  # fmt: skip
    assert out["bundle"] is None and out["bundle_error"] == "no current in /b"


def test_created_timestamp_reads_the_manifests_utc_time(tiny_build: BuildResult) -> None:
    with open_bundle(tiny_build.path) as bundle:
        m = bundle.typed_manifest
    assert (
        status.created_timestamp(dataclasses.replace(m, created_at="1970-01-02T00:00:00Z")) == 86400
    )
    assert (
        status.created_timestamp(dataclasses.replace(m, created_at="1970-01-02T00:00:00")) == 86400
    )
    assert status.created_timestamp(dataclasses.replace(m, created_at="")) is None
    assert status.created_timestamp(dataclasses.replace(m, created_at="yesterday")) is None
