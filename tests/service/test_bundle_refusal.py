"""Whatever bytes a published bundle holds, the workers of a real `segue serve` refuse it and keep
serving the one they have: an index corrupted with its size kept (Annoy would follow its child
node ids out of the file), a manifest whose ensemble weight was changed."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from indexes.bundle import publish
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildResult, build_bundle
from tests.conftest import TINY
from tests.indexes.bundle.damage import corrupt_children
from tests.service.conftest import Server, children, start_server, stop_server, wait_ready
from tests.waiting import wait_until


def refused_total(server: Server) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    m = re.search(r"^segue_bundle_refused_total ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


class Stream:
    """Clients looping similar-tracks requests on fresh connections (so every worker gets
    some), bounded in time and count."""

    def __init__(self, server: Server, *, threads: int = 2) -> None:
        self.server = server
        self.statuses: Counter[int] = Counter()
        self.versions: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        deadline = time.monotonic() + 120
        n = 0
        while not self._stop.is_set() and time.monotonic() < deadline and n < 20000:
            n += 1
            try:
                r = httpx.get(
                    f"{self.server.url}/v1/tracks/t000/similar", params={"limit": 10}, timeout=10
                )
                self.statuses[r.status_code] += 1
                self.versions.append(r.headers.get("x-bundle-version", ""))
                if r.status_code != 200:
                    self.failures.append(f"{r.status_code} {r.text[:200]}")
            except httpx.HTTPError as e:
                self.failures.append(repr(e))

    def __enter__(self) -> Stream:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def _staged(root: Path, seed: int) -> BuildResult:
    return build_bundle(
        generate_synthetic(n_tracks=500, seed=seed), out=root, config=TINY, publish=False
    )


def _serve(root: Path, tmp: Path) -> Server:
    server = start_server(root=root, tmp=tmp, workers=2, env={"SEGUE_AUTH": "off"})
    wait_ready(server)
    return server


@pytest.mark.slow
def test_a_same_size_corrupted_index_is_refused_without_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    first = build_bundle(generate_synthetic(n_tracks=500, seed=41), out=root, config=TINY)
    server = _serve(root, tmp_path)
    try:
        workers = children(server.process.pid)
        assert len(workers) == 2
        before = refused_total(server)
        staged = _staged(root, 42)
        entry = next(
            e for e in staged.manifest["indexes"] if e["file"] == "als.tracks.ann"
        )  # the default model's index: the one similar-tracks queries
        with Stream(server) as stream:
            wait_until(lambda: len(stream.versions) > 20, timeout=30, what="requests flowing")
            corrupt_children(
                staged.path / "als.tracks.ann", n_items=entry["n_items"], dims=entry["dims"],
                metric=entry["metric"],
            )  # fmt: skip
            publish(staging=staged.path, root=root, version=staged.version)
            wait_until(
                lambda: refused_total(server) >= before + 1,
                timeout=60, every=0.2, what="the corrupted bundle refused",
            )  # fmt: skip
            n = len(stream.versions)
            wait_until(lambda: len(stream.versions) > n + 50, timeout=30, what="more answers")
        log = server.log.read_text()
        assert "SIGSEGV" not in log and "Worker (pid" not in log, log[-3000:]
        assert children(server.process.pid) == workers  # no worker died and was replaced
        assert not stream.failures, stream.failures[:5]
        assert set(stream.versions) == {first.version}
        assert refused_total(server) == before + 1  # counted once per host, not per worker
        assert "als.tracks.ann" in log and "refused" in log
    finally:
        stop_server(server)


@pytest.mark.slow
def test_a_changed_manifest_weight_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    first = build_bundle(generate_synthetic(n_tracks=500, seed=43), out=root, config=TINY)
    server = _serve(root, tmp_path)
    try:
        before = refused_total(server)
        staged = _staged(root, 44)
        manifest_path = staged.path / "manifest.json"
        text = manifest_path.read_text()
        m = json.loads(text)
        weights = m["ensemble"]["tracks"]["weights"]
        i = next(i for i, v in enumerate(weights) if v != 0)
        weights[i] += 8.0  # the probe: 1.22 -> 9.22
        manifest_path.write_text(json.dumps(m, indent=2))
        publish(staging=staged.path, root=root, version=staged.version)
        wait_until(
            lambda: refused_total(server) >= before + 1,
            timeout=60, every=0.2, what="the edited manifest refused",
        )  # fmt: skip
        for _ in range(20):
            r = httpx.get(f"{server.url}/v1/tracks/t000/similar", timeout=10)
            assert r.status_code == 200
            assert r.headers["x-bundle-version"] == first.version
        assert "manifest.json" in server.log.read_text()
    finally:
        stop_server(server)


@pytest.mark.slow
def test_no_good_bundle_at_start_stays_unready(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    staged = _staged(root, 45)
    entry = next(e for e in staged.manifest["indexes"] if e["file"] == "als.tracks.ann")
    corrupt_children(
        staged.path / "als.tracks.ann", n_items=entry["n_items"], dims=entry["dims"],
        metric=entry["metric"],
    )  # fmt: skip
    publish(staging=staged.path, root=root, version=staged.version)
    server = start_server(root=root, tmp=tmp_path, workers=2, env={"SEGUE_AUTH": "off"})
    try:
        wait_until(lambda: "refused" in server.log.read_text(), timeout=60, what="refused")
        for _ in range(10):
            r = httpx.get(f"{server.url}/readyz", timeout=10)
            assert r.status_code == 503 and "als.tracks.ann" in r.text, r.text
            r = httpx.get(f"{server.url}/v1/tracks/t000/similar", timeout=10)
            assert r.status_code == 503
        assert server.process.poll() is None
        assert "SIGSEGV" not in server.log.read_text()
    finally:
        stop_server(server)
