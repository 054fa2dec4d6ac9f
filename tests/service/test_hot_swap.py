"""Publishing a new bundle under a running server: every worker moves to it, no request fails."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from indexes.bundle import publish
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import build_bundle
from tests.conftest import TINY
from tests.service.conftest import start_server, stop_server, wait_ready
from tests.waiting import wait_until


@pytest.mark.slow
def test_hot_swap_under_a_stream_of_requests(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    first = build_bundle(generate_synthetic(n_tracks=800, seed=31), out=root, config=TINY)
    server = start_server(root=root, tmp=tmp_path)
    try:
        wait_ready(server)
        # a station made on the first bundle, with some history
        station = httpx.post(f"{server.url}/v1/stations",
                             json={"user_id": "u0001", "tracks": ["t000"]}).json()  # fmt: skip
        sid = station["id"]
        before = httpx.get(f"{server.url}/v1/stations/{sid}/tracks", params={"limit": 5}).json()
        statuses: Counter[int] = Counter()
        versions: list[str] = []
        failures: list[str] = []
        stop = threading.Event()

        def stream() -> None:
            # bounded in time and count; new connections so both workers get requests
            deadline = time.monotonic() + 120
            n = 0
            while not stop.is_set() and time.monotonic() < deadline and n < 20000:
                n += 1
                try:
                    r = httpx.get(
                        f"{server.url}/v1/tracks/t000/similar", params={"limit": 10}, timeout=10
                    )
                    statuses[r.status_code] += 1
                    versions.append(r.headers.get("x-bundle-version", ""))
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                except httpx.HTTPError as e:
                    failures.append(repr(e))

        threads = [threading.Thread(target=stream) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: first.version in versions, timeout=30, what="the first version")
            second = build_bundle(generate_synthetic(n_tracks=800, seed=32), out=root, config=TINY)
            # the stream has seen the new version many times in a row: all workers moved
            wait_until(
                lambda: versions[-30:] == [second.version] * 30,
                timeout=60, every=0.2, what="30 answers in a row from the new bundle",
            )  # fmt: skip
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not failures, failures[:5]
        seen = Counter(versions)
        assert seen[first.version] > 0 and seen[second.version] > 0, seen
        assert versions[-30:] == [second.version] * 30
        assert statuses[200] == sum(statuses.values()) > 100

        # the station stays pinned to the first version and keeps working on the second
        played = [t["id"] for t in before["items"]]
        after = httpx.get(f"{server.url}/v1/stations/{sid}/tracks", params={"limit": 10})
        assert after.status_code == 200, after.text
        assert after.headers["x-bundle-version"] == second.version
        more = [t["id"] for t in after.json()["items"]]
        assert len(more) == 10 and not set(more) & set(played)
        fb = httpx.post(f"{server.url}/v1/stations/{sid}/feedback",
                        json={"event_id": "e1", "track_id": more[0], "type": "thumbs_up"})  # fmt: skip
        assert fb.status_code == 200, fb.text
        view = fb.json()["station"]
        assert view["bundle_version"] == first.version and view["played"] == 15
    finally:
        stop_server(server)


@pytest.mark.slow
def test_a_damaged_new_bundle_is_refused_and_the_old_one_kept(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    first = build_bundle(generate_synthetic(n_tracks=500, seed=33), out=root, config=TINY)
    server = start_server(root=root, tmp=tmp_path, workers=1)
    try:
        wait_ready(server)
        staged = build_bundle(
            generate_synthetic(n_tracks=500, seed=34), out=root, config=TINY, publish=False
        )
        ann = staged.path / "als.tracks.ann"
        ann.write_bytes(ann.read_bytes()[:-10])  # damaged before it goes live
        publish(staging=staged.path, root=root, version=staged.version)
        wait_until(
            lambda: "segue_bundle_refused_total 1.0" in httpx.get(f"{server.url}/metrics").text,
            timeout=30, every=0.1, what="the damaged bundle refused",
        )  # fmt: skip
        for _ in range(20):
            r = httpx.get(f"{server.url}/v1/tracks/t000", timeout=10)
            assert r.status_code == 200
            assert r.headers["x-bundle-version"] == first.version
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert "segue_bundle_refused_total 1.0" in metrics
        assert "truncated" in server.log.read_text()
    finally:
        stop_server(server)


@pytest.mark.parametrize(("var", "value"), [("SEGUE_PORT", "eighty"), ("SEGUE_WORKERS", "0")])
def test_bad_setting_fails_at_start_naming_it(tmp_path: Path, var: str, value: str) -> None:
    import subprocess
    import sys

    env = {**__import__("os").environ, var: value}
    r = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--bundles", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert var in r.stderr and value in r.stderr
