"""Similar tracks (the ensemble) and related artists over HTTP, in this process: the precomputed
lists, from the worker's memory after the first read; one model still asks its index."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexes.pipeline import BuildResult
from service import neighbours
from service.app import create_app
from service.bundle_holder import LoadedBundle, load
from service.recommend import cap_per_artist, similar_tracks
from service.settings import Settings


@pytest.fixture(scope="module")
def settings(tiny_build: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    store = tmp_path_factory.mktemp("similar") / "store.db"
    return Settings(bundles=tiny_build.path.parent, store=f"sqlite:///{store}",
                    swap_poll_seconds=0.2, store_check_seconds=0.2)  # fmt: skip


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        ready(c)
        yield c


def ready(c: TestClient) -> None:
    deadline = time.monotonic() + 60
    while c.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, c.get("/readyz").text
        time.sleep(0.05)


@pytest.fixture(scope="module")
def loaded(tiny_build: BuildResult, settings: Settings) -> Iterator[LoadedBundle]:
    lb = load(tiny_build.path, verify_checksums=False,
              candidates_per_source=settings.candidates_per_source, search_k=None)  # fmt: skip
    yield lb
    lb.bundle.close()


def ids(body: dict[str, Any]) -> list[str]:
    return [i["id"] for i in body["items"]]


def list_reads(client: TestClient, result: str, listing: str = "radio") -> float:
    """segue_list_cache_total of `listing` (radio, related, rendered) with `result` (hit or
    miss)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'segue_list_cache_total{{list="{listing}",result="{result}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_similar_tracks_are_the_radio_list_capped(
    client: TestClient, loaded: LoadedBundle, settings: Settings
) -> None:
    track = loaded.bundle.tracks.id_of(12)
    body = client.get(f"/v1/tracks/{track}/similar", params={"limit": 15}).json()
    radio = neighbours.compute_radio(loaded, row=12, size=settings.radio_size,
                                     artist_cap=settings.radio_artist_cap,
                                     per_source=settings.radio_candidates_per_source)  # fmt: skip
    artist = loaded.bundle.tracks.artist
    assert artist is not None
    rows = np.asarray([i.row for i in radio], dtype=np.int32)
    scores = np.asarray([i.score for i in radio], dtype=np.float32)
    want = cap_per_artist(rows, scores, artist=artist, cap=settings.artist_cap, limit=15)
    assert ids(body) == [loaded.bundle.tracks.id_of(i.row) for i in want]
    assert [i["score"] for i in body["items"]] == pytest.approx([i.score for i in want], rel=1e-6)
    assert body["model"] == "ensemble"
    # the same ranking as the radio neighbours of the track
    radio_body = client.get(f"/v1/tracks/{track}/radio-neighbours").json()
    radio_ids = ids(radio_body)
    positions = [radio_ids.index(t) for t in ids(body)]
    assert positions == sorted(positions)


def test_a_list_read_once_is_served_from_memory(client: TestClient, loaded: LoadedBundle) -> None:
    track = loaded.bundle.tracks.id_of(31)
    hits, misses = list_reads(client, "hit"), list_reads(client, "miss")
    first = client.get(f"/v1/tracks/{track}/similar").json()
    assert list_reads(client, "miss") == misses + 1
    again = client.get(f"/v1/tracks/{track}/similar", params={"limit": 5}).json()
    radio = client.get(f"/v1/tracks/{track}/radio-neighbours", params={"limit": 10}).json()
    assert list_reads(client, "hit") == hits + 2 and list_reads(client, "miss") == misses + 1
    assert ids(again) == ids(first)[:5]
    assert radio["source"] == "cache"


def test_a_warm_answer_is_sent_as_rendered_before(client: TestClient, loaded: LoadedBundle) -> None:
    """The second time, the same bytes from the worker's rendered answers; a computed radio
    answer (which says so) and an explained one are not kept."""
    track = loaded.bundle.tracks.id_of(44)
    radio_path = f"/v1/tracks/{track}/radio-neighbours?limit=9"
    computed = client.get(radio_path)
    assert computed.json()["source"] == "computed"
    for path in (f"/v1/tracks/{track}/similar?limit=7", radio_path):
        first = client.get(path)
        assert first.status_code == 200, first.text
        hits = list_reads(client, "hit", "rendered")
        again = client.get(path)
        assert list_reads(client, "hit", "rendered") == hits + 1
        assert again.content == first.content
        assert again.headers["content-type"] == "application/json"
    assert client.get(radio_path).json()["source"] == "cache"
    hits, misses = list_reads(client, "hit", "rendered"), list_reads(client, "miss", "rendered")
    explained = client.get(f"/v1/tracks/{track}/similar?limit=7&explain=true").json()
    assert all("sources" in i for i in explained["items"])
    assert (list_reads(client, "hit", "rendered"), list_reads(client, "miss", "rendered")) == (
        hits,
        misses,
    )


def test_one_model_still_asks_its_index(client: TestClient, loaded: LoadedBundle,
                                        settings: Settings) -> None:  # fmt: skip
    track = loaded.bundle.tracks.id_of(40)
    body = client.get(f"/v1/tracks/{track}/similar", params={"limit": 10, "model": "als"}).json()
    want = similar_tracks(loaded, row=40, limit=10, source="als", artist_cap=settings.artist_cap)
    assert ids(body) == [loaded.bundle.tracks.id_of(i.row) for i in want]


def test_a_short_radio_list_falls_back_to_the_ensemble_online(
    tiny_build: BuildResult, tmp_path: Path, loaded: LoadedBundle
) -> None:
    """A radio list too short for the limit (SEGUE_RADIO_SIZE below it) does not cut /similar:
    it goes on in the radio's own ranking (its candidates per source), not in another one."""
    settings = Settings(bundles=tiny_build.path.parent, store=f"sqlite:///{tmp_path}/s.db",
                        radio_size=5, store_check_seconds=0.2)  # fmt: skip
    with TestClient(create_app(settings)) as c:
        ready(c)
        track = loaded.bundle.tracks.id_of(12)
        body = c.get(f"/v1/tracks/{track}/similar", params={"limit": 20}).json()
    want = similar_tracks(loaded, row=12, limit=20, source="ensemble",
                          artist_cap=settings.artist_cap,
                          per_source=settings.radio_candidates_per_source)  # fmt: skip
    assert len(body["items"]) == 20
    assert ids(body) == [loaded.bundle.tracks.id_of(i.row) for i in want]


def test_related_artists_are_served_from_memory(client: TestClient, loaded: LoadedBundle) -> None:
    artist = loaded.bundle.artists.id_of(2)
    first = client.get(f"/v1/artists/{artist}/related")
    again = client.get(f"/v1/artists/{artist}/related", params={"limit": 4})
    assert first.status_code == again.status_code == 200
    assert first.json()["source"] == "computed" and again.json()["source"] == "cache"
    assert ids(again.json()) == ids(first.json())[:4]


def test_an_unknown_model_is_a_422_even_for_an_unknown_track(client: TestClient) -> None:
    r = client.get("/v1/tracks/no-such-track/similar?model=bogus")
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "model"]


def test_a_damaged_stored_list_is_computed_again_and_rewritten(
    client: TestClient, loaded: LoadedBundle, settings: Settings
) -> None:
    import sqlite3

    track = loaded.bundle.tracks.id_of(33)
    shape = neighbours.RadioShape(
        size=settings.radio_size, artist_cap=settings.radio_artist_cap,
        per_source=settings.radio_candidates_per_source,
    )  # fmt: skip
    version = neighbours.list_version(loaded.version, shape=shape)
    path = settings.store.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO radio_neighbours (bundle_version, track_id, ranked, computed_at)"
            " VALUES (?, ?, ?, 0)",
            (version, track, b"\x01\x01"),
        )
    for route in ("similar", "radio-neighbours"):
        r = client.get(f"/v1/tracks/{track}/{route}")
        assert r.status_code == 200, r.text
    with sqlite3.connect(path) as conn:
        (blob,) = conn.execute(
            "SELECT ranked FROM radio_neighbours WHERE bundle_version = ? AND track_id = ?",
            (version, track),
        ).fetchone()
    assert len(blob) > 2  # written again, whole
