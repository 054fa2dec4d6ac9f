"""Ids as real data has them, end to end: a plays CSV whose ids hold `/`, `%`, `?`, `#`, unicode,
spaces (also leading and trailing) and route suffixes (`a/similar`), loaded, built into a bundle
and served by `segue serve`. Every id round-trips exactly through every path; an unknown one is
the documented 404 naming it."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from indexes.datasets.plays_csv import load_plays_csv
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildResult, build_bundle
from tests.conftest import TINY
from tests.service.conftest import Server, start_server, stop_server, wait_ready

TRACK_IDS = [
    "a/b",
    "50%",
    "what?",
    "#1",
    "Zoë ñ 東京",
    " leading and trailing ",
    "shy fx & t-power - ",
    "a",
    "a/similar",  # and "a" itself: the bare route and the suffix route must not mix them up
    "a/radio-neighbours",
    "%2F",  # a literal percent escape: sent as %252F
    'it\'s "quoted", \\ too',
    "+ & = ; @ : ~ ! $ * ( ) [ ] { } | ^ ` < >",
    "...",
    ".",  # a dot segment: clients drop it unless it is encoded (%2E)
    "..",
]
ARTIST_IDS = ["AC/DC", "100%", "who?", "#2", "Sigur Rós 東京", " spaced ", "x", "x/related"]
USER_IDS = ["u/1", " spaced user ", "ü?#%"]
UNKNOWN_IDS = ["no/such", "nope%", "nope?", "#nope", "Zoë nope", " nope ", "a/b/similar", "%2F%2F"]


def segment(external_id: str) -> str:
    """An id as one percent-encoded path segment, as a client sends it."""
    if set(external_id) == {"."}:  # "." and ".." would be dot segments: encode every dot
        return external_id.replace(".", "%2E")
    return quote(external_id, safe="")


def write_plays_csv(path: Path) -> None:
    """The synthetic catalogue as a plays CSV, the most played tracks, artists and users renamed."""
    ds = generate_synthetic(n_tracks=300, seed=11)
    items = ds.items
    track_ids = items.track_ids.astype(object)
    track_ids[np.argsort(-ds.track_plays(), kind="stable")[: len(TRACK_IDS)]] = TRACK_IDS
    artist_ids = items.artist_ids.astype(object)
    artist_plays = np.asarray(ds.artist_interactions().sum(axis=0)).ravel()
    artist_ids[np.argsort(-artist_plays, kind="stable")[: len(ARTIST_IDS)]] = ARTIST_IDS
    user_ids = ds.user_ids.astype(object)
    user_plays = np.asarray(ds.interactions.sum(axis=1)).ravel()
    user_ids[np.argsort(-user_plays, kind="stable")[: len(USER_IDS)]] = USER_IDS
    m = ds.interactions.tocoo()
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["user", "track", "artist", "count", "track_name", "artist_name"])
        for u, t, count in zip(m.row, m.col, m.data, strict=True):
            a = items.track_artist[t]
            out.writerow([user_ids[u], track_ids[t], artist_ids[a], int(count),
                          items.track_names[t], items.artist_names[a]])  # fmt: skip


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    tmp = tmp_path_factory.mktemp("ids")
    write_plays_csv(tmp / "plays.csv")
    data = load_plays_csv(tmp / "plays.csv")
    assert data.report.bad == 0, data.report.summary()
    assert set(TRACK_IDS) <= set(data.items.track_ids.tolist())  # as written: nothing stripped
    assert set(ARTIST_IDS) <= set(data.items.artist_ids.tolist())
    assert set(USER_IDS) <= set(data.user_ids.tolist())
    config = dataclasses.replace(TINY, max_validation_users=150, max_validation_seeds=300)
    return build_bundle(data, out=tmp / "bundles", config=config)


@pytest.fixture(scope="module")
def http(build: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server: Server = start_server(
        root=build.path.parent, tmp=tmp_path_factory.mktemp("ids-server"), workers=1
    )
    try:
        wait_ready(server, in_a_row=3)
        with server.client() as client:
            yield client
    finally:
        stop_server(server)


def get(http: httpx.Client, path: str, version: str, **params: int | str) -> dict[str, Any]:
    """The 200 JSON body of GET `path`, served from the bundle `version`."""
    r = http.get(path, params=params)
    assert r.status_code == 200, (path, r.text)
    assert r.headers["x-bundle-version"] == version
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("track_id", TRACK_IDS)
def test_every_track_path_takes_the_exact_id(
    http: httpx.Client, build: BuildResult, track_id: str
) -> None:
    path = f"/v1/tracks/{segment(track_id)}"
    track = get(http, path, build.version)
    assert track["id"] == track_id
    similar = get(http, f"{path}/similar", build.version, limit=5)
    assert similar["track"] == track and len(similar["items"]) == 5
    assert track_id not in [i["id"] for i in similar["items"]]
    radio = get(http, f"{path}/radio-neighbours", build.version, limit=5)
    assert radio["track"] == track and len(radio["items"]) == 5
    # the ids a list answers are exact too: each one leads back to its track
    for item in similar["items"][:2]:
        again = get(http, f"/v1/tracks/{segment(item['id'])}", build.version)
        assert again["id"] == item["id"]


@pytest.mark.parametrize("artist_id", ARTIST_IDS)
def test_every_artist_path_takes_the_exact_id(
    http: httpx.Client, build: BuildResult, artist_id: str
) -> None:
    path = f"/v1/artists/{segment(artist_id)}"
    artist = get(http, path, build.version)
    assert artist["id"] == artist_id
    related = get(http, f"{path}/related", build.version, limit=5)
    assert related["artist"] == artist and len(related["items"]) == 5
    assert artist_id not in [i["id"] for i in related["items"]]


@pytest.mark.parametrize("user_id", USER_IDS)
def test_recommendations_take_the_exact_user_id(
    http: httpx.Client, build: BuildResult, user_id: str
) -> None:
    body = get(http, f"/v1/users/{segment(user_id)}/recommendations", build.version, limit=5)
    assert body["user"] == user_id and len(body["items"]) == 5


def test_suffix_routes_and_ids_ending_in_a_suffix_stay_apart(
    http: httpx.Client, build: BuildResult
) -> None:
    """`a%2Fsimilar` is the track "a/similar"; `a/similar` (unencoded) is the similar tracks of
    "a"; an unencoded "/" inside an id is a path separator, so no route matches it."""
    assert get(http, "/v1/tracks/a%2Fsimilar", build.version)["id"] == "a/similar"
    assert get(http, "/v1/tracks/a/similar", build.version)["track"]["id"] == "a"
    assert get(http, "/v1/tracks/a%2Fsimilar/similar", build.version)["track"]["id"] == "a/similar"
    assert get(http, "/v1/tracks/a%2Fradio-neighbours", build.version)["id"] == "a/radio-neighbours"
    assert get(http, "/v1/artists/x%2Frelated", build.version)["id"] == "x/related"
    assert get(http, "/v1/artists/x/related", build.version)["artist"]["id"] == "x"
    r = http.get("/v1/tracks/a/b")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


@pytest.mark.parametrize("unknown", UNKNOWN_IDS)
def test_unknown_ids_are_404_naming_the_exact_id(http: httpx.Client, unknown: str) -> None:
    s = segment(unknown)
    cases = [
        (f"/v1/tracks/{s}", f"track {unknown!r} not found"),
        (f"/v1/tracks/{s}/similar", f"track {unknown!r} not found"),
        (f"/v1/tracks/{s}/radio-neighbours", f"track {unknown!r} not found"),
        (f"/v1/artists/{s}", f"artist {unknown!r} not found"),
        (f"/v1/artists/{s}/related", f"artist {unknown!r} not found"),
        (f"/v1/users/{s}/recommendations", f"user {unknown!r} not found"),
        (f"/v1/stations/{s}", f"station {unknown!r} not found"),
        (f"/v1/stations/{s}/tracks", f"station {unknown!r} not found"),
    ]
    for path, detail in cases:
        r = http.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json() == {"detail": detail}, path
        assert "x-bundle-version" in r.headers


def test_stations_take_exact_ids(http: httpx.Client, build: BuildResult) -> None:
    r = http.post(
        "/v1/stations",
        json={"user_id": "u/1", "tracks": ["a/b", " leading and trailing "], "artists": ["AC/DC"]},
    )
    assert r.status_code == 201, r.text
    station = r.json()
    assert station["user_id"] == "u/1"
    assert {"a/b", " leading and trailing "} <= set(station["seeds"])
    sid = segment(station["id"])
    pulled = get(http, f"/v1/stations/{sid}/tracks", build.version, limit=3)["items"]
    assert len(pulled) == 3
    r = http.post(
        f"/v1/stations/{sid}/feedback",
        json={"event_id": "e/1?#", "track_id": pulled[0]["id"], "type": "thumbs_up"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["station"]["liked"] == [pulled[0]["id"]]
    r = http.post("/v1/stations", json={"user_id": "u/1", "tracks": ["no/such"]})
    assert r.status_code == 404 and r.json() == {"detail": "track 'no/such' not found"}


def test_openapi_documents_id_params_as_strings(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    id_paths = [p for p in spec["paths"] if "{" in p]
    assert id_paths and not [p for p in id_paths if ":" in p]  # no convertor leaks
    for path in id_paths:
        for operation in spec["paths"][path].values():
            params = [p for p in operation["parameters"] if p["in"] == "path"]
            assert params, path
            assert all(p["schema"]["type"] == "string" for p in params), path
