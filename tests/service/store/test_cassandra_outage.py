"""A real Cassandra outage under `segue serve`: the 503s, the endpoints that keep working, and
the same workers recovering on their own once Cassandra is back.

The test stops the Cassandra process (scripts/cassandra stop) and starts it again, so it needs
a Cassandra that scripts/cassandra manages at the address the tests use (it fails otherwise,
rather than stop another one). It does not depend on running last: it has its own server and
keyspace, and it ends only once CQL answers again at the tests' address.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.service import cassandra_server as cassandra
from tests.service.conftest import Server, children, some_tracks
from tests.waiting import wait_until


def workers(server: Server) -> set[int]:
    return children(server.process.pid)


def recovered_workers(server: Server) -> int:
    """How many "store ...: ok" lines the server logged after its first "unavailable" one (each
    worker logs its store's state when it changes)."""
    lines = server.log.read_text(encoding="utf-8", errors="replace").splitlines()
    down = next((i for i, line in enumerate(lines) if "store " in line and ": unavailable" in line),
                None)  # fmt: skip
    if down is None:
        return 0
    return sum(1 for line in lines[down:] if line.startswith("[") and "store " in line
               and line.rstrip().endswith(": ok"))  # fmt: skip


def restart_and_wait_for_cql() -> None:
    """Starts Cassandra again and waits, with a deadline, until CQL answers at the tests'
    address: the tests after this one find it as they would have before."""
    started = cassandra.script("start", timeout=400)
    assert started.returncode == 0, started.stdout + started.stderr
    wait_until(cassandra.answers, timeout=120, every=1.0, what=f"CQL at {cassandra.address()}")


@pytest.mark.slow
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

    status = cassandra.script("status", timeout=60)
    assert f"CQL answering on {cassandra.address()}" in status.stdout, (
        "scripts/cassandra does not manage the test Cassandra (set SEGUE_CASSANDRA_PORT and "
        f"SEGUE_CASSANDRA_DATA to its own): {status.stdout}{status.stderr}"
    )
    stopped = cassandra.script("stop", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        # the store-backed endpoint answers 503 with Retry-After and says why
        wait_until(
            lambda: httpx.get(f"{url}/v1/tracks/{track}/radio-neighbours").status_code == 503,
            timeout=30, every=0.25, what="503 from radio-neighbours",
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
        restart_and_wait_for_cql()

    # the same workers recover on their own, without a restart: each logs its store back (new
    # connections can all land on one worker, so their answers alone do not show both)
    wait_until(lambda: recovered_workers(cassandra_server) >= len(pids), timeout=90, every=0.25,
               what="every worker's store back to ok in the server log")  # fmt: skip
    wait_until(
        lambda: all(
            httpx.get(f"{url}/v1/tracks/{track}/radio-neighbours").status_code == 200
            for _ in range(4)
        ),
        timeout=90, every=0.25, what="radio-neighbours answering again after Cassandra restarted",
    )  # fmt: skip
    after = http.get(f"/v1/tracks/{track}/radio-neighbours").json()
    assert [i["id"] for i in after["items"]] == [i["id"] for i in before["items"]]
    wait_until(lambda: httpx.get(f"{url}/readyz").json()["status"] == "ready",
               timeout=30, every=0.25, what="/readyz back to ready")  # fmt: skip
    assert workers(cassandra_server) == pids
    text = http.get("/metrics").text
    m = re.search(r"^segue_store_errors_total (\S+)$", text, re.M)
    assert m and float(m.group(1)) >= 1
