"""The service on a real Cassandra: read-through, precompute and concurrent station feedback."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from indexes.pipeline import BuildResult
from tests.service import cassandra_server as cassandra
from tests.service.conftest import Server, some_tracks

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # a bundle build and `segue serve` on Cassandra for the module


def test_readyz_names_the_cassandra_store(cassandra_server: Server, keyspace: str) -> None:
    body = httpx.get(cassandra_server.url + "/readyz").json()
    assert body["status"] == "ready"
    assert body["store"] == {"url": cassandra.url(keyspace), "state": "ok", "detail": "ok"}


def test_radio_neighbours_read_through_cassandra(cassandra_server: Server) -> None:
    http = cassandra_server.client()
    track = some_tracks(http, 4)[3]
    first = http.get(f"/v1/tracks/{track}/radio-neighbours").json()
    assert first["source"] == "computed" and len(first["items"]) >= 100
    for _ in range(4):  # new connections: both workers read the list back from Cassandra
        again = httpx.get(f"{cassandra_server.url}/v1/tracks/{track}/radio-neighbours").json()
        assert again["source"] == "cache"
        assert [i["id"] for i in again["items"]] == [i["id"] for i in first["items"]]


def test_precompute_into_cassandra_then_serve_from_it(
    cassandra_server: Server, served_build: BuildResult, keyspace: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "precompute", "--bundles",
         str(served_build.path.parent), "--store", cassandra.url(keyspace), "--chunk-size", "250"],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "complete" in out.stdout
    http = cassandra_server.client()
    for track in some_tracks(http, 30)[10:]:
        assert http.get(f"/v1/tracks/{track}/radio-neighbours").json()["source"] == "cache"
    artists = [a["id"] for a in http.get("/v1/artists", params={"limit": 10}).json()["items"]]
    for artist in artists:
        assert http.get(f"/v1/artists/{artist}/related").json()["source"] == "cache"


def test_concurrent_feedback_on_one_station_is_applied_exactly_once(
    cassandra_server: Server, keyspace: str
) -> None:
    http = cassandra_server.client()
    seed = some_tracks(http, 12)[11]
    sid = http.post("/v1/stations", json={"user_id": "u0002", "tracks": [seed]}).json()["id"]
    played = [
        t["id"]
        for t in http.get(f"/v1/stations/{sid}/tracks", params={"limit": 40}).json()["items"]
    ]
    kinds = ["thumbs_up", "skip", "completed", "thumbs_down"]
    calls = [(f"ev-{i}", played[i], kinds[i % 4]) for i in range(40)]
    calls += [(f"ev-{i}", played[i], kinds[i % 4]) for i in range(0, 40, 4)]  # 10 duplicates
    results: list[tuple[str, int, bool]] = []
    failures: list[tuple[str, int, str]] = []

    busy: list[str] = []

    def send(call: tuple[str, str, str]) -> None:
        event_id, track, kind = call
        for _ in range(20):
            # a new connection per call: both workers take part
            r = httpx.post(f"{cassandra_server.url}/v1/stations/{sid}/feedback",
                           json={"event_id": event_id, "track_id": track, "type": kind},
                           timeout=60)  # fmt: skip
            if r.status_code != 409:
                break
            # the station was busy for SEGUE_STATION_BUSY_SECONDS: retry as the README says
            assert r.headers["retry-after"] == "1"
            busy.append(event_id)
            time.sleep(float(r.headers["retry-after"]))
        results.append((event_id, r.status_code, r.status_code == 200 and r.json()["applied"]))
        if r.status_code != 200:
            failures.append((event_id, r.status_code, r.text))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, calls))
    assert not failures, failures[:5]
    print(f"409 busy answers (retried): {len(busy)}")
    applied = Counter(e for e, _, a in results if a)
    assert sorted(applied) == sorted(f"ev-{i}" for i in range(40))  # each one exactly once
    assert set(applied.values()) == {1}
    station = http.get(f"/v1/stations/{sid}").json()
    assert station["events"] == {"thumbs_up": 10, "skip": 10, "completed": 10, "thumbs_down": 10}
    assert station["revision"] == 1 + 1 + 40  # created, one pull, 40 events: none lost
    c = cassandra.cluster()
    try:
        rows = list(c.connect().execute(
            f"SELECT event_id FROM {keyspace}.station_events WHERE station_id = %s", (sid,)))  # fmt: skip
    finally:
        c.shutdown()
    assert sorted(r.event_id for r in rows) == sorted(f"ev-{i}" for i in range(40))
