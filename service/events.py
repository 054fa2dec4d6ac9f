"""`segue events export`: the station event log out of the store, closing the loop.

The sessions format is what `segue build --dataset sessions:FILE` reads: one session per station,
the tracks the listener liked or played to the end, in time order. Thumbs down and skips are
negative feedback, not plays, so they are left out of it; `--format events` writes everything.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from indexes.bundle import open_bundle, resolve_current
from service.radio import COMPLETED, THUMBS_UP
from service.store.base import Store

POSITIVE = (THUMBS_UP, COMPLETED)
EVENT_FIELDS = ("station_id", "event_id", "user_id", "variant", "bundle_version", "track_id",
                "kind", "at")  # fmt: skip


def export_events(*, store: Store, bundles: Path, out: Path, fmt: str) -> dict[str, Any]:
    events = sorted(store.events(), key=lambda e: (e.at, e.station_id, e.event_id))
    out.parent.mkdir(parents=True, exist_ok=True)
    reasons: dict[str, int] = {}
    rows = 0
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if fmt == "events":
            w.writerow(EVENT_FIELDS)
            for e in events:
                w.writerow([getattr(e, k) for k in EVENT_FIELDS])
                rows += 1
        else:
            bundle = open_bundle(resolve_current(bundles), verify_checksums=False)
            try:
                tracks, artists = bundle.tracks, bundle.artists
                assert tracks.artist is not None
                w.writerow(["session", "timestamp", "track", "artist", "user", "track_name",
                            "artist_name"])  # fmt: skip
                seen: set[tuple[str, str]] = set()
                for e in events:
                    if e.kind not in POSITIVE:
                        reasons[f"{e.kind} (not a play)"] = (
                            reasons.get(f"{e.kind} (not a play)", 0) + 1
                        )
                        continue
                    if (e.station_id, e.track_id) in seen:  # liked and completed: one play
                        reasons["same track twice"] = reasons.get("same track twice", 0) + 1
                        continue
                    row = tracks.row_of(e.track_id)
                    if row is None:
                        reasons["track not in the bundle"] = (
                            reasons.get("track not in the bundle", 0) + 1
                        )
                        continue
                    seen.add((e.station_id, e.track_id))
                    a = int(tracks.artist[row])
                    w.writerow([e.station_id, f"{e.at:.3f}", e.track_id, artists.id_of(a), e.user_id,
                                tracks.names[row], artists.names[a]])  # fmt: skip
                    rows += 1
            finally:
                bundle.close()
    tmp.replace(out)
    return {"events": len(events), "rows": rows, "skipped": sum(reasons.values()),
            "reasons": ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items()))}  # fmt: skip
