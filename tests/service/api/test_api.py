"""Every endpoint over real HTTP against `segue serve` with 2 uvicorn workers."""

from __future__ import annotations

import re
from collections import Counter

import httpx
import pytest

from indexes.pipeline import BuildResult
from tests.service.conftest import Server


@pytest.fixture(scope="module")
def http(server: Server) -> httpx.Client:
    return server.client()


def first_track(http: httpx.Client) -> dict:  # type: ignore[type-arg]
    return http.get("/v1/tracks", params={"limit": 1}).json()["items"][0]


def test_ops(http: httpx.Client, served_build: BuildResult) -> None:
    assert http.get("/livez").json() == {"status": "ok"}
    r = http.get("/readyz")
    assert r.status_code == 200 and r.json()["bundle_version"] == served_build.version
    assert r.json()["status"] == "ready"
    assert r.json()["store"]["state"] == "ok" and r.json()["store"]["url"].startswith("sqlite:///")
    assert r.headers["x-bundle-version"] == served_build.version
    assert http.get("/openapi.json").json()["info"]["title"] == "segue"


def test_track_lookup_and_search(http: httpx.Client, served_build: BuildResult) -> None:
    listed = http.get("/v1/tracks", params={"limit": 5}).json()["items"]
    assert len(listed) == 5
    t = listed[2]
    got = http.get(f"/v1/tracks/{t['id']}")
    assert got.status_code == 200 and got.json() == t
    assert got.headers["x-bundle-version"] == served_build.version
    word = t["name"].split()[0]
    found = http.get("/v1/tracks", params={"q": word.upper(), "limit": 50}).json()["items"]
    assert found and all(word.lower() in f["name"].lower() for f in found)
    listeners = [f["listeners"] for f in found]
    assert listeners == sorted(listeners, reverse=True)  # most listened first
    assert http.get("/v1/tracks", params={"q": "no such name at all"}).json() == {"items": []}


def test_artist_lookup_search_and_related(http: httpx.Client) -> None:
    a = http.get("/v1/artists", params={"limit": 3}).json()["items"][1]
    assert http.get(f"/v1/artists/{a['id']}").json() == a
    found = http.get("/v1/artists", params={"q": a["name"].lower()}).json()["items"]
    assert a["id"] in [f["id"] for f in found]
    related = http.get(f"/v1/artists/{a['id']}/related").json()
    assert related["artist"] == a
    assert len(related["items"]) == 20  # the default
    assert a["id"] not in [x["id"] for x in related["items"]]
    assert len(http.get(f"/v1/artists/{a['id']}/related", params={"limit": 7}).json()["items"]) == 7


@pytest.mark.parametrize("model", ["ensemble", "als", "word2vec", "content"])
def test_similar_tracks(http: httpx.Client, model: str) -> None:
    t = first_track(http)
    r = http.get(f"/v1/tracks/{t['id']}/similar", params={"limit": 15, "model": model})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["track"] == t and body["model"] == model
    items = body["items"]
    assert len(items) == 15
    assert t["id"] not in [i["id"] for i in items]
    per_artist = Counter(i["artist"]["id"] for i in items)
    assert max(per_artist.values()) <= 2  # SEGUE_ARTIST_CAP default
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)


def test_list_bodies_match_their_response_models(
    http: httpx.Client, served_build: BuildResult
) -> None:
    """The list endpoints build their JSON without pydantic; it must still be exactly what the
    OpenAPI response models say: validating and dumping again gives the same body back."""
    from indexes.bundle import open_bundle
    from service.api import schemas

    with open_bundle(served_build.path) as b:
        assert b.users is not None
        user = b.users.id_of(3)
    t = first_track(http)
    a = http.get("/v1/artists", params={"limit": 1}).json()["items"][0]
    station = http.post("/v1/stations", json={"user_id": "u0003", "tracks": [t["id"]]}).json()
    cases = [
        ("/v1/tracks?limit=5", schemas.TrackList),
        ("/v1/artists?limit=5", schemas.ArtistList),
        (f"/v1/tracks/{t['id']}/similar", schemas.SimilarTracks),
        (f"/v1/tracks/{t['id']}/similar?model=als", schemas.SimilarTracks),
        (f"/v1/tracks/{t['id']}/radio-neighbours?limit=30", schemas.RadioNeighbours),
        (f"/v1/artists/{a['id']}/related", schemas.RelatedArtists),
        (f"/v1/users/{user}/recommendations", schemas.Recommendations),
        (f"/v1/stations/{station['id']}/tracks?limit=3", schemas.StationTracks),
        (f"/v1/tracks/{t['id']}/similar?explain=true", schemas.SimilarTracks),
        (f"/v1/stations/{station['id']}/queue?limit=3", schemas.StationQueue),
        ("/v1/ops", schemas.OpsStatus),
    ]
    for path, model in cases:
        r = http.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"] == "application/json"
        parsed = model.model_validate(r.json(), strict=True)
        # exclude_unset: an optional field a body leaves out (similar's `sources` without
        # explain) stays out
        assert parsed.model_dump(mode="json", exclude_unset=True) == r.json(), path
        assert r.json().get("items", r.json().get("upcoming", r.json().get("bundle"))), path


def test_similar_defaults_to_the_ensemble(http: httpx.Client) -> None:
    t = first_track(http)
    body = http.get(f"/v1/tracks/{t['id']}/similar").json()
    assert body["model"] == "ensemble" and len(body["items"]) == 20


def test_user_recommendations(http: httpx.Client, served_build: BuildResult) -> None:
    from indexes.bundle import open_bundle

    with open_bundle(served_build.path) as b:
        assert b.users is not None
        user = b.users.id_of(3)
        played = {b.tracks.id_of(int(r)) for r in b.users.plays(3)[0]}
    body = http.get(f"/v1/users/{user}/recommendations", params={"limit": 10}).json()
    assert body["user"] == user and len(body["items"]) == 10
    for item in body["items"]:
        assert item["id"] not in played
        assert re.match(r"(More from|Because you listen to) .+", item["reason"]), item["reason"]


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/v1/tracks/nope-123", "track 'nope-123' not found"),
        ("/v1/tracks/nope-123/similar", "track 'nope-123' not found"),
        ("/v1/artists/ghost", "artist 'ghost' not found"),
        ("/v1/artists/ghost/related", "artist 'ghost' not found"),
        ("/v1/tracks/nope-123/radio-neighbours", "track 'nope-123' not found"),
        ("/v1/users/nobody/recommendations", "user 'nobody' not found"),
    ],
)
def test_unknown_ids_are_404_naming_the_id(http: httpx.Client, path: str, needle: str) -> None:
    r = http.get(path)
    assert r.status_code == 404
    assert r.json() == {"detail": needle}
    assert "x-bundle-version" in r.headers


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"model": "nope"}, {"limit": -5}]
)
def test_bad_parameters_are_422(http: httpx.Client, params: dict) -> None:  # type: ignore[type-arg]
    t = first_track(http)
    r = http.get(f"/v1/tracks/{t['id']}/similar", params=params)
    assert r.status_code == 422, r.text
    assert "detail" in r.json()


def test_radio_neighbours_read_through_the_store(http: httpx.Client) -> None:
    t = http.get("/v1/tracks", params={"limit": 3}).json()["items"][2]
    first = http.get(f"/v1/tracks/{t['id']}/radio-neighbours")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["track"] == t and body["source"] == "computed"  # a miss: computed, written back
    items = body["items"]
    assert 100 <= len(items) <= 250
    assert t["id"] not in [i["id"] for i in items]
    assert len({i["id"] for i in items}) == len(items)
    assert max(Counter(i["artist"]["id"] for i in items).values()) <= 10  # SEGUE_RADIO_ARTIST_CAP
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    # every worker now reads the same list from the store
    for _ in range(6):
        again = httpx.get(f"{http.base_url}/v1/tracks/{t['id']}/radio-neighbours").json()
        assert again["source"] == "cache"
        assert [i["id"] for i in again["items"]] == [i["id"] for i in items]
        assert [i["score"] for i in again["items"]] == pytest.approx(scores, rel=1e-6)
    short = http.get(f"/v1/tracks/{t['id']}/radio-neighbours", params={"limit": 7}).json()
    assert [i["id"] for i in short["items"]] == [i["id"] for i in items[:7]]
    assert (
        http.get(f"/v1/tracks/{t['id']}/radio-neighbours", params={"limit": 251}).status_code == 422
    )


def test_related_artists_are_written_back_and_read_from_the_store(http: httpx.Client) -> None:
    a = http.get("/v1/artists", params={"limit": 5}).json()["items"][4]
    first = http.get(f"/v1/artists/{a['id']}/related").json()
    assert first["source"] == "computed"
    second = http.get(f"/v1/artists/{a['id']}/related").json()
    assert second["source"] == "cache"
    assert [x["id"] for x in second["items"]] == [x["id"] for x in first["items"]]
    more = http.get(f"/v1/artists/{a['id']}/related", params={"limit": 30}).json()
    assert more["source"] == "computed" and len(more["items"]) == 30  # beyond the stored 20


def test_metrics_add_up_over_workers(server: Server, http: httpx.Client) -> None:
    t = first_track(http)
    n = 40
    for _ in range(n):
        # a new connection each time, so the kernel spreads them over both workers
        assert httpx.get(f"{server.url}/v1/tracks/{t['id']}").status_code == 200
    text = http.get("/metrics").text
    m = re.search(
        r'segue_request_seconds_count\{method="GET",route="/v1/tracks/\{track_id\}",status="200"\} (\S+)',
        text,
    )
    assert m, text[:2000]
    assert float(m.group(1)) >= n
    assert re.search(r'segue_ann_seconds_count\{entity="tracks",model="als"\} \d', text)
    assert re.search(r'segue_bundle_info\{pid="\d+",version="[^"]+"\} 1\.0', text)
    assert re.search(r'segue_radio_cache_total\{list="related",result="(hit|miss)"\} \d', text)
    pids = {p.name.split("_")[-1] for p in server.metrics_dir.glob("histogram_*.db")}
    assert len(pids) >= 2, pids  # both workers wrote samples, and /metrics added them up
