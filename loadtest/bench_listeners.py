"""Benchmark: do stations learn from feedback? Simulated listeners on the synthetic catalogue.

    PYTHONPATH=. python loadtest/bench_listeners.py [--tracks 5000] [--listeners 150]
        [--seeds in-taste|anywhere]

Builds a synthetic bundle (into a temporary directory) and runs stations through the service's
own station code (service/stations.py, radio.py) on a real SQLite store, without HTTP. Each
listener has a hidden taste, one genre of the generator. It starts a station from one seed
track (`in-taste`: a track of its genre; `anywhere`: any track), pulls 50 tracks in pulls of 10,
and after each pull, in the arm with feedback, gives a thumbs up to every in-taste track and a
thumbs down or a skip (half and half) to every other one. The arm without feedback pulls the
same 50 tracks with the same station seed and sends nothing.

Prints, per arm, the in-taste share of tracks 1-10 and of tracks 41-50 (mean over listeners),
and the lift of feedback at 41-50. Figures go to stdout as key=value lines. Not a test.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from loadtest.common import emit, log


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tracks", type=int, default=5000)
    p.add_argument("--listeners", type=int, default=150)
    p.add_argument("--seeds", choices=("in-taste", "anywhere"), default="anywhere")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)

    from indexes.datasets.synthetic import generate_synthetic
    from indexes.pipeline import BuildConfig, build_bundle
    from service import radio, stations
    from service.bundle_holder import load
    from service.settings import Settings
    from service.store.factory import open_store

    data = generate_synthetic(n_tracks=args.tracks, seed=args.seed)
    genre_of_index = np.asarray(data.truth["track_genre"])
    ids = list(data.items.track_ids)
    genre = {t: int(genre_of_index[i]) for i, t in enumerate(ids)}
    with tempfile.TemporaryDirectory(prefix="bench-listeners-") as tmp:
        log(f"building a synthetic bundle of {args.tracks} tracks")
        built = build_bundle(data, out=Path(tmp) / "bundles", config=BuildConfig(seed=args.seed))
        loaded = load(built.path, verify_checksums=False, candidates_per_source=50, search_k=None)
        store = open_store(f"sqlite:///{Path(tmp) / 'store.db'}")
        config = Settings.defaults().station_config()
        rng = random.Random(args.seed)
        played_genres = sorted(set(genre.values()))
        shares: dict[str, list[list[float]]] = {"feedback": [], "none": []}
        start = time.perf_counter()
        try:
            for n in range(args.listeners):
                taste = rng.choice(played_genres)
                pool = [t for t in ids if genre[t] == taste] if args.seeds == "in-taste" else ids
                seed_track = rng.choice(pool)
                station_seed = rng.getrandbits(31)
                for arm in ("feedback", "none"):
                    st, _ = stations.create(loaded, store, user=f"listener-{n}", seeds=[seed_track],
                                            config=config, seed=station_seed)  # fmt: skip
                    per_pull = []
                    for pull in range(5):
                        _, got = stations.next_tracks(
                            loaded, store, station_id=st.id, n=10, config=config
                        )
                        per_pull.append(sum(genre[t] == taste for t in got) / max(len(got), 1))
                        if arm == "feedback":
                            for i, t in enumerate(got):
                                kind = (radio.THUMBS_UP if genre[t] == taste
                                        else rng.choice([radio.THUMBS_DOWN, radio.SKIP]))  # fmt: skip
                                stations.feedback(loaded, store, station_id=st.id,
                                                  event_id=f"{pull}-{i}", kind=kind, track=t,
                                                  config=config)  # fmt: skip
                    shares[arm].append(per_pull)
                if (n + 1) % 25 == 0:
                    log(f"{n + 1}/{args.listeners} listeners ({time.perf_counter() - start:.0f}s)")
        finally:
            store.close()
            loaded.bundle.close()
    emit(tracks=args.tracks, listeners=args.listeners, seeds=args.seeds,
         genres=len(played_genres), seconds=time.perf_counter() - start)  # fmt: skip
    result = {}
    for arm, rows in shares.items():
        a = np.asarray(rows)
        result[arm] = (float(a[:, 0].mean()), float(a[:, 4].mean()))
        emit(arm=arm, in_taste_tracks_1_10=result[arm][0], in_taste_tracks_41_50=result[arm][1])
    emit(feedback_lift_41_50=result["feedback"][1] - result["none"][1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
