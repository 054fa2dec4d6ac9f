"""The per-worker store monitor, in plain Python on an SQLite file."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from service.settings import Settings
from service.store.base import StoreUnavailable
from service.store_monitor import StoreMonitor

OPTIONS = Settings.defaults().store_options()


def test_a_store_that_is_down_is_refused_at_once_until_it_answers_again(tmp_path: Path) -> None:
    monitor = StoreMonitor(f"sqlite:///{tmp_path / 's.db'}", options=OPTIONS)
    try:
        with pytest.raises(StoreUnavailable, match="not checked yet"):
            monitor.store()
        assert monitor.check().ok and monitor.ever_ok
        store = monitor.store()

        monitor.failed(StoreUnavailable("request timed out", down=False))  # one slow request
        assert monitor.state.ok and monitor.store() is store

        monitor.failed(StoreUnavailable("connection refused"))  # the store is down
        assert not monitor.state.ok and monitor.optional() is None
        with pytest.raises(StoreUnavailable, match="connection refused"):
            monitor.store()

        assert monitor.check().ok  # the next ping brings it back
        assert monitor.store() is store
    finally:
        monitor.close()


def test_a_locked_sqlite_file_is_a_slow_request_not_a_store_down(tmp_path: Path) -> None:
    monitor = StoreMonitor(
        f"sqlite:///{tmp_path / 's.db'}", options=replace(OPTIONS, timeout_seconds=0.05)
    )
    try:
        assert monitor.check().ok
        store = monitor.store()
        store.create_station(station_id="s", state="a")
        holder = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(StoreUnavailable, match="locked") as e:
                store.update_station(station_id="s", state="b", expected_revision=1)
            assert not e.value.down
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store.update_station(station_id="s", state="b", expected_revision=1)
    finally:
        monitor.close()
