"""Locust users that behave like listeners of segue (run it with loadtest/run).

Mostly a listener creates a station from a track found by search, pulls tracks and sends thumbs
up, thumbs down, skips and completions; now and then they look up similar tracks, related
artists or search. The weights come from loadtest/locust.json (SEGUE_LOCUST_CONFIG to use
another file).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path
from typing import Any

from locust import HttpUser, between, task

CONFIG: dict[str, Any] = json.loads(
    Path(os.environ.get("SEGUE_LOCUST_CONFIG", Path(__file__).with_name("locust.json"))).read_text()
)
WORDS = ["a", "e", "i", "o", "night", "blue", "the", "love", "star", "fire"]


def _weighted(weights: dict[str, float]) -> str:
    names = list(weights)
    return random.choices(names, weights=[weights[n] for n in names])[0]


class Listener(HttpUser):
    wait_time = between(*CONFIG["think_time_seconds"])

    def on_start(self) -> None:
        # a service with authentication on: an admin token (the listeners are many users)
        if token := os.environ.get("SEGUE_LOADTEST_TOKEN"):
            self.client.headers["Authorization"] = f"Bearer {token}"
        self.tracks: list[str] = []
        self.artists: list[str] = []
        r = self.client.get("/v1/tracks", params={"limit": 100}, name="/v1/tracks?q=")
        if r.ok:
            items = r.json()["items"]
            self.tracks = [t["id"] for t in items]
            self.artists = list({t["artist"]["id"] for t in items})

    def _track(self) -> str | None:
        return random.choice(self.tracks) if self.tracks else None

    @task(CONFIG["tasks"]["listen"])
    def listen(self) -> None:
        seed = self._track()
        if seed is None:
            return
        r = self.client.post("/v1/stations", json={"user_id": f"load-{uuid.uuid4().hex[:8]}",
                                                    "tracks": [seed]}, name="/v1/stations")  # fmt: skip
        if r.status_code != 201:
            return
        sid = r.json()["id"]
        for _ in range(CONFIG["pulls_per_station"]):
            got = self.client.get(f"/v1/stations/{sid}/tracks",
                                  params={"limit": CONFIG["tracks_per_pull"]},
                                  name="/v1/stations/{id}/tracks")  # fmt: skip
            if not got.ok:
                return
            for t in got.json()["items"]:
                kind = _weighted(CONFIG["feedback"])
                self.client.post(f"/v1/stations/{sid}/feedback",
                                 json={"event_id": uuid.uuid4().hex, "track_id": t["id"], "type": kind},
                                 name="/v1/stations/{id}/feedback")  # fmt: skip
        self.client.delete(f"/v1/stations/{sid}", name="/v1/stations/{id}")

    @task(CONFIG["tasks"]["similar_tracks"])
    def similar_tracks(self) -> None:
        t = self._track()
        if t:
            self.client.get(f"/v1/tracks/{t}/similar", params={"limit": 20},
                            name="/v1/tracks/{id}/similar")  # fmt: skip

    @task(CONFIG["tasks"]["related_artists"])
    def related_artists(self) -> None:
        if self.artists:
            a = random.choice(self.artists)
            self.client.get(f"/v1/artists/{a}/related", name="/v1/artists/{id}/related")

    @task(CONFIG["tasks"]["search"])
    def search(self) -> None:
        self.client.get("/v1/tracks", params={"q": random.choice(WORDS), "limit": 10},
                        name="/v1/tracks?q=")  # fmt: skip
