"""The service on a real Cassandra: read-through, precompute, concurrent station feedback, and
a real outage. (The file name sorts last: the outage test stops and restarts Cassandra.)

The outage test stops the Cassandra process (scripts/cassandra stop) while `segue serve` runs,
checks the 503s and the endpoints that keep working, starts Cassandra again and checks that the
same workers recover on their own. It runs last among the Cassandra tests and always leaves
Cassandra running.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from indexes.pipeline import BuildResult
from tests.service import cassandra_server as cassandra
from tests.service.conftest import Server, children, start_server, stop_server, wait_ready

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keyspace() -> Iterator[str]:
    name = cassandra.new_keyspace()
    cassandra.address()  # skip (or fail in CI) before building anything
    yield name
    cassandra.drop_keyspace(name)


@pytest.fixture(scope="module")
def cassandra_server(
    served_build: BuildResult, keyspace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    s = start_server(
        root=served_build.path.parent,
        tmp=tmp_path_factory.mktemp("cassandra-server"),
        env={"SEGUE_STORE": cassandra.url(keyspace), "SEGUE_STORE_CHECK_SECONDS": "0.5"},
    )
    try:
        wait_ready(s, timeout=120)
        yield s
    finally:
        stop_server(s)


def workers(server: Server) -> set[int]:
    return children(server.process.pid)


def some_tracks(http: httpx.Client, n: int) -> list[str]:
    return [t["id"] for t in http.get("/v1/tracks", params={"limit": n}).json()["items"]]


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

    def send(call: tuple[str, str, str]) -> None:
        event_id, track, kind = call
        # a new connection per call: both workers take part
        r = httpx.post(f"{cassandra_server.url}/v1/stations/{sid}/feedback",
                       json={"event_id": event_id, "track_id": track, "type": kind}, timeout=60)  # fmt: skip
        results.append((event_id, r.status_code, r.status_code == 200 and r.json()["applied"]))
        if r.status_code != 200:
            failures.append((event_id, r.status_code, r.text))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(send, calls))
    assert not failures, failures[:5]
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


def _until(check: object, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_a_real_outage_gives_503_keeps_the_bundle_endpoints_and_recovers(
    cassandra_server: Server,
) -> None:
    url = cassandra_server.url
    http = cassandra_server.client()
    tracks = some_tracks(http, 8)
    track, other = tracks[5], tracks[6]
    artist = http.get("/v1/artists", params={"limit": 1}).json()["items"][0]["id"]
    before = http.get(f"/v1/tracks/{track}/radio-neighbours").json()
    pids = workers(cassandra_server)
    assert len(pids) == 2

    stopped = cassandra.script("stop", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        # the store-backed endpoint answers 503 with Retry-After and says why
        _until(
            lambda: httpx.get(f"{url}/v1/tracks/{track}/radio-neighbours").status_code == 503,
            timeout=30, what="503 from radio-neighbours",
        )  # fmt: skip
        for _ in range(6):
            r = httpx.get(f"{url}/v1/tracks/{other}/radio-neighbours")
            assert r.status_code == 503
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["detail"].startswith("store unavailable, try again later")
            assert "x-bundle-version" in r.headers
        # the endpoints that need only the bundle keep answering
        for _ in range(6):
            assert httpx.get(f"{url}/v1/tracks/{track}/similar").status_code == 200
            assert httpx.get(f"{url}/v1/tracks", params={"q": "a"}).status_code == 200
            related = httpx.get(f"{url}/v1/artists/{artist}/related")
            assert related.status_code == 200 and len(related.json()["items"]) == 20
            ready = httpx.get(f"{url}/readyz")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            assert ready.json()["store"]["state"] == "unavailable"
        assert workers(cassandra_server) == pids  # no worker crashed or was replaced
    finally:
        started = cassandra.script("start", timeout=400)
    assert started.returncode == 0, started.stdout + started.stderr

    # the same workers recover on their own, without a restart
    _until(
        lambda: all(
            httpx.get(f"{url}/v1/tracks/{track}/radio-neighbours").status_code == 200
            for _ in range(4)
        ),
        timeout=90, what="radio-neighbours answering again after Cassandra restarted",
    )  # fmt: skip
    after = http.get(f"/v1/tracks/{track}/radio-neighbours").json()
    assert [i["id"] for i in after["items"]] == [i["id"] for i in before["items"]]
    _until(lambda: httpx.get(f"{url}/readyz").json()["status"] == "ready", timeout=30,
           what="/readyz back to ready")  # fmt: skip
    assert workers(cassandra_server) == pids
    text = http.get("/metrics").text
    m = re.search(r"^segue_store_errors_total (\S+)$", text, re.M)
    assert m and float(m.group(1)) >= 1
