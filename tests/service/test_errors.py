"""Every service error through the app's one handler: status, body and headers; and the store
monitor, which turns store failures into them and alone marks the store down."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service import errors
from service.app import create_app
from service.settings import Settings
from service.stations import StationBusy, StationNotFound
from service.store.base import Store, StoreUnavailable
from service.store.sqlite import SqliteStore
from service.store_monitor import StoreMonitor

OPTIONS = Settings.defaults().store_options()

CASES: list[tuple[Exception, int, Any, dict[str, str]]] = [
    (errors.NotFound("track", "a/b"), 404, "track 'a/b' not found", {}),
    (errors.ModelUnavailable("bundle v1 has no users (format 1)"), 404,
     "bundle v1 has no users (format 1)", {}),
    (errors.BadParameter("model", "unknown model 'x'"), 422,
     [{"loc": ["query", "model"], "msg": "unknown model 'x'", "type": "value_error"}], {}),
    (errors.Busy("station 's' is busy; try again"), 409, "station 's' is busy; try again",
     {"retry-after": "1"}),
    (errors.NoBundle("no bundle loaded yet from var/bundles"), 503,
     "not ready: no bundle loaded yet from var/bundles", {"retry-after": "1"}),
    (errors.NoStore("connection refused", retry_after=7), 503,
     "store unavailable, try again later: connection refused", {"retry-after": "7"}),
    (StationNotFound("s1"), 404, "station 's1' not found", {}),
    (StationBusy("station 's1' is busy; try again"), 409, "station 's1' is busy; try again",
     {"retry-after": "1"}),
    (RuntimeError("a bug"), 500, "internal error", {}),
]  # fmt: skip


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    errors.install(app)

    @app.get("/raise/{case}")
    async def raise_case(case: int) -> None:
        raise CASES[case][0]

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[type(c[0]).__name__ for c in CASES])
def test_each_error_gets_its_status_body_and_headers(
    client: TestClient, case: int, caplog: pytest.LogCaptureFixture
) -> None:
    _, status, detail, headers = CASES[case]
    with caplog.at_level(logging.ERROR, logger="segue"):
        r = client.get(f"/raise/{case}")
    assert r.status_code == status
    assert r.json() == {"detail": detail}
    assert r.headers.get("retry-after") == headers.get("retry-after")
    logged = [rec for rec in caplog.records if rec.name == "segue"]
    assert bool(logged) == (status == 500)  # only the unexpected error is logged, with its trace
    if logged:
        assert logged[0].exc_info and "GET /raise/" in logged[0].getMessage()


def test_the_app_answers_every_error_with_the_one_handler() -> None:
    handlers = create_app(Settings()).exception_handlers
    ours = {k for k in handlers if k.__module__.startswith(("service", "indexes", "builtins"))}
    assert ours == {errors.ServiceError, Exception}  # the rest are FastAPI's own
    assert issubclass(StationNotFound, errors.NotFound) and issubclass(StationBusy, errors.Busy)


def fail_with(monkeypatch: pytest.MonkeyPatch, error: StoreUnavailable) -> None:
    """Every get_station of an SQLite store raises `error` (from inside the store)."""

    def fail(self: SqliteStore, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(SqliteStore, "get_station", fail)


def get_station(store: Store) -> Any:
    return store.get_station(station_id="s")


def test_the_monitor_refuses_a_known_down_store_and_marks_it_down_on_a_failed_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monitor = StoreMonitor(f"sqlite:///{tmp_path / 's.db'}", options=OPTIONS,
                           retry_after_seconds=9, on_error=lambda: seen.append(1))  # fmt: skip
    try:
        with pytest.raises(errors.NoStore) as refused:  # not checked yet: refused at once
            asyncio.run(monitor.run(get_station))
        assert refused.value.headers == {"Retry-After": "9"} and len(seen) == 1
        assert monitor.state.detail == "not checked yet"  # a refusal is not a new failure
        assert monitor.check().ok
        assert asyncio.run(monitor.run(get_station)) is None

        with monkeypatch.context() as m:
            fail_with(m, StoreUnavailable("request timed out", down=False))
            with pytest.raises(errors.NoStore, match="timed out"):
                asyncio.run(monitor.run(get_station))
        assert monitor.state.ok and len(seen) == 2  # one slow request: the store stays up

        down = StoreUnavailable("connection refused")
        fail_with(monkeypatch, down)
        with pytest.raises(errors.NoStore, match="connection refused") as failed:
            asyncio.run(monitor.run(get_station))
        assert failed.value.status_code == 503 and failed.value.__cause__ is down
        assert not monitor.state.ok and monitor.state.detail == "connection refused"
        assert len(seen) == 3 and monitor.optional() is None
        assert monitor.check().ok  # the next ping brings it back
    finally:
        monitor.close()


def test_a_failure_caught_by_the_caller_still_marks_the_store_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor hears of every failed call of its store, also one the logic layer catches
    (related artists are computed from the bundle when the store fails)."""
    seen: list[int] = []
    monitor = StoreMonitor(f"sqlite:///{tmp_path / 's.db'}", options=OPTIONS,
                           on_error=lambda: seen.append(1))  # fmt: skip
    try:
        assert monitor.check().ok
        store = monitor.optional()
        assert store is not None and store.url == monitor.url  # attributes pass through
        fail_with(monkeypatch, StoreUnavailable("disk I/O error"))
        with pytest.raises(StoreUnavailable):
            get_station(store)
        assert not monitor.state.ok and len(seen) == 1
    finally:
        monitor.close()
