"""Radio stations over real HTTP (`segue serve`, 2 workers, the SQLite store)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from indexes.datasets.registry import load_dataset
from indexes.pipeline import BuildResult
from tests.service.conftest import Server

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def http(server: Server) -> httpx.Client:
    return server.client()


def tracks_of(http: httpx.Client, n: int) -> list[dict]:  # type: ignore[type-arg]
    return http.get("/v1/tracks", params={"limit": n}).json()["items"]


def new_station(http: httpx.Client, **body: object) -> dict:  # type: ignore[type-arg]
    r = http.post("/v1/stations", json={"user_id": "u0003", **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def pull(http: httpx.Client, sid: str, n: int) -> list[str]:
    r = http.get(f"/v1/stations/{sid}/tracks", params={"limit": n})
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()["items"]]


def feedback(http: httpx.Client, sid: str, event: str, track: str, kind: str) -> httpx.Response:
    return http.post(f"/v1/stations/{sid}/feedback",
                     json={"event_id": event, "track_id": track, "type": kind})  # fmt: skip


def test_a_station_from_a_track(http: httpx.Client, served_build: BuildResult) -> None:
    seed = tracks_of(http, 3)[2]["id"]
    st = new_station(http, tracks=[seed])
    assert st["seeds"] == [seed] and st["played"] == 0 and st["queued"] >= 100
    assert st["bundle_version"] == served_build.version and st["revision"] == 1
    assert st["variant"] in ("control", "fewer-hits")
    assert http.get(f"/v1/stations/{st['id']}").json() == st
    served = []
    for _ in range(6):
        served += pull(http, st["id"], 10)
    assert len(served) == 60 and len(set(served)) == 60 and seed not in served
    got = http.get(f"/v1/stations/{st['id']}").json()
    assert got["played"] == 60 and got["revision"] == 7


def test_a_station_from_an_artist_and_several_seeds(http: httpx.Client) -> None:
    artist = http.get("/v1/artists", params={"limit": 1}).json()["items"][0]["id"]
    t = tracks_of(http, 5)[4]["id"]
    st = new_station(http, artists=[artist], tracks=[t])
    assert st["seeds"][0] == t and 2 <= len(st["seeds"]) <= 4
    assert len(pull(http, st["id"], 20)) == 20


def test_a_seed_replays_the_same_station(http: httpx.Client) -> None:
    t = tracks_of(http, 8)[7]["id"]
    a = new_station(http, tracks=[t], seed=1234)
    b = new_station(http, tracks=[t], seed=1234)
    first_a, first_b = pull(http, a["id"], 5), pull(http, b["id"], 5)
    assert first_a == first_b
    for sid in (a["id"], b["id"]):
        assert feedback(http, sid, "x1", first_a[1], "thumbs_up").status_code == 200
    assert pull(http, a["id"], 15) == pull(http, b["id"], 15)


def test_feedback_is_applied_once_and_reshapes_the_station(http: httpx.Client) -> None:
    st = new_station(http, tracks=[tracks_of(http, 2)[1]["id"]])
    sid = st["id"]
    played = pull(http, sid, 10)
    up = feedback(http, sid, "ev-1", played[0], "thumbs_up")
    assert up.status_code == 200 and up.json()["applied"] is True
    again = feedback(http, sid, "ev-1", played[0], "thumbs_up")
    assert again.json()["applied"] is False
    assert again.json()["station"]["revision"] == up.json()["station"]["revision"]
    down = feedback(http, sid, "ev-2", played[1], "thumbs_down").json()
    assert down["applied"] and played[1] in down["station"]["thumbed_down"]
    assert feedback(http, sid, "ev-3", played[2], "skip").json()["applied"]
    assert feedback(http, sid, "ev-4", played[3], "completed").json()["applied"]
    view = http.get(f"/v1/stations/{sid}").json()
    assert view["liked"] == [played[0]]
    assert view["events"] == {"thumbs_up": 1, "thumbs_down": 1, "skip": 1, "completed": 1}
    later = []
    for _ in range(10):
        later += pull(http, sid, 20)
    assert not set(later) & set(played)  # neither played nor thumbed-down tracks come back


def test_the_queue_shows_what_comes_next_without_advancing(http: httpx.Client) -> None:
    sid = new_station(http, tracks=[tracks_of(http, 1)[0]["id"]])["id"]
    played = pull(http, sid, 3)

    def queue(limit: int) -> dict:  # type: ignore[type-arg]
        r = http.get(f"/v1/stations/{sid}/queue", params={"limit": limit})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    first, again = queue(8), queue(8)
    assert first == again  # looking changes nothing
    assert first["station"]["played"] == 3 and first["station"]["revision"] == 2
    assert [t["id"] for t in first["played"]] == played[::-1]  # the most recent first
    upcoming = [t["id"] for t in first["upcoming"]]
    assert len(upcoming) == 8 and not set(upcoming) & set(played)
    assert pull(http, sid, 8) == upcoming  # exactly what /tracks then serves
    # a thumbs down on a queued track takes it out of what comes next
    down = queue(5)["upcoming"][2]["id"]
    assert feedback(http, sid, "q-down", down, "thumbs_down").status_code == 200
    assert down not in [t["id"] for t in queue(50)["upcoming"]]
    assert http.get("/v1/stations/nope/queue").status_code == 404
    assert http.get(f"/v1/stations/{sid}/queue", params={"limit": 0}).status_code == 422


def test_errors(http: httpx.Client) -> None:
    t = tracks_of(http, 1)[0]["id"]
    assert http.get("/v1/stations/nope").json() == {"detail": "station 'nope' not found"}
    assert http.get("/v1/stations/nope/tracks").status_code == 404
    assert feedback(http, "nope", "e", t, "skip").status_code == 404
    assert http.delete("/v1/stations/nope").status_code == 404
    r = http.post("/v1/stations", json={"user_id": "u1", "tracks": ["ghost"]})
    assert r.status_code == 404 and r.json() == {"detail": "track 'ghost' not found"}
    r = http.post("/v1/stations", json={"user_id": "u1", "artists": ["ghost"]})
    assert r.json() == {"detail": "artist 'ghost' not found"}
    for bad in ({"user_id": "u1"}, {"user_id": "", "tracks": [t]}, {"tracks": [t]},
                {"user_id": "u1", "tracks": [t], "colour": "red"}):  # fmt: skip
        assert http.post("/v1/stations", json=bad).status_code == 422, bad
    sid = new_station(http, tracks=[t])["id"]
    assert http.get(f"/v1/stations/{sid}/tracks", params={"limit": 51}).status_code == 422
    assert feedback(http, sid, "e", t, "love").status_code == 422
    assert feedback(http, sid, "e", "ghost", "skip").json() == {"detail": "track 'ghost' not found"}
    assert http.delete(f"/v1/stations/{sid}").status_code == 204
    assert http.get(f"/v1/stations/{sid}").status_code == 404


def test_station_metrics_carry_the_variant(http: httpx.Client) -> None:
    st = new_station(http, tracks=[tracks_of(http, 4)[3]["id"]])
    t = pull(http, st["id"], 3)
    feedback(http, st["id"], "m1", t[0], "skip")
    text = http.get("/metrics").text
    v = st["variant"]
    assert re.search(rf'segue_station_events_total\{{type="skip",variant="{v}"\}} [1-9]', text)
    assert re.search(rf'segue_station_events_total\{{type="created",variant="{v}"\}} [1-9]', text)


def test_variants_are_assigned_by_a_stable_hash(http: httpx.Client) -> None:
    t = tracks_of(http, 1)[0]["id"]
    seen = {}
    for i in range(24):
        user = f"user-{i}"
        v1 = new_station(http, user_id=user, tracks=[t])["variant"]
        v2 = new_station(http, user_id=user, tracks=[t])["variant"]
        assert v1 == v2
        seen[user] = v1
    assert set(seen.values()) == {"control", "fewer-hits"}  # the served bundle defines both


def test_events_export_closes_the_loop(server: Server, http: httpx.Client, tmp_path: Path) -> None:
    st = new_station(http, tracks=[tracks_of(http, 6)[5]["id"]])
    played = pull(http, st["id"], 6)
    for i, (t, kind) in enumerate(zip(played, ["thumbs_up", "completed", "skip", "thumbs_down",
                                               "completed", "thumbs_up"], strict=True)):  # fmt: skip
        assert feedback(http, st["id"], f"x{i}", t, kind).status_code == 200
    store = server_store(server)
    out = tmp_path / "sessions.csv"
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "events", "export", "--store", store,
         "--bundles", str(server.root), "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [r for r in csv.DictReader(out.open()) if r["session"] == st["id"]]
    assert [r["track"] for r in rows] == [played[0], played[1], played[4], played[5]]
    data = load_dataset(f"sessions:{out}", seed=1)  # what `segue build` reads back
    assert data.report.bad == 0 and len(data.sequences) >= 1
    raw = tmp_path / "events.csv"
    subprocess.run(
        [sys.executable, "-m", "service.cli", "events", "export", "--store", store,
         "--format", "events", "--out", str(raw)],
        check=True, capture_output=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    kinds = [r["kind"] for r in csv.DictReader(raw.open()) if r["station_id"] == st["id"]]
    assert sorted(kinds) == sorted(["thumbs_up", "completed", "skip", "thumbs_down", "completed",
                                    "thumbs_up"])  # fmt: skip


def server_store(server: Server) -> str:
    port = server.url.rsplit(":", 1)[1]
    return f"sqlite:///{server.log.parent / f'store-{port}.db'}"
