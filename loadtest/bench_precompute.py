"""Benchmark: CPU per list of `segue precompute`'s computation, batched against row by row.

    PYTHONPATH=. python loadtest/bench_precompute.py --bundles DIR [--rows 1000] [--passes 2]

In one process, over the same rows of the bundle: the lists `service.precompute.compute_lists`
ranks a batch at a time, and the same lists computed row by row as a request computes them
(`neighbours.compute_radio` / `recommend.related_artists`), alternating, `--passes` times; CPU
seconds from `time.process_time()` (steadier than wall time on a shared machine) and wall seconds.
Checks that both give the same lists. No store: the write side is `bench_store.py`'s. Figures go
to stdout as `key=value` lines. Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# one BLAS thread, as in a precompute worker process (set before numpy loads)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from indexes.bundle import resolve_current
from loadtest.common import emit


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundles", type=Path, required=True, help="bundles directory (with current)")
    p.add_argument("--rows", type=int, default=1000, help="tracks (and artists) per pass")
    p.add_argument("--first", type=int, default=5000, help="first track row")
    p.add_argument("--passes", type=int, default=2)
    args = p.parse_args(argv)
    from service.bundle_holder import load
    from service.neighbours import RELATED_SIZE, compute_radio, ranked
    from service.precompute import compute_lists
    from service.recommend import related_artists
    from service.settings import Settings
    from service.store.base import RADIO, RELATED

    config = Settings.defaults().precompute_config()
    loaded = load(resolve_current(args.bundles), verify_checksums=False,
                  candidates_per_source=config.candidates_per_source, search_k=config.search_k)  # fmt: skip
    tracks, artists = loaded.bundle.tracks, loaded.bundle.artists
    first = min(args.first, max(0, len(tracks) - args.rows))
    work = {
        RADIO: range(first, min(first + args.rows, len(tracks))),
        RELATED: range(min(args.rows, len(artists))),
    }

    def row_by_row(kind: str) -> list[object]:
        if kind == RADIO:
            return [
                (tracks.id_of(r), ranked(loaded, compute_radio(
                    loaded, row=r, size=config.radio_size, artist_cap=config.radio_artist_cap,
                    per_source=config.radio_candidates_per_source,
                )))
                for r in work[kind]
            ]  # fmt: skip
        return [
            (artists.id_of(r),
             ranked(loaded, related_artists(loaded, row=r, limit=RELATED_SIZE), entity="artists"))
            for r in work[kind]
        ]  # fmt: skip

    def batched(kind: str) -> list[object]:
        return list(compute_lists(loaded, kind=kind, rows=work[kind], config=config))

    emit(bundle=loaded.version, tracks=len(tracks), artists=len(artists), rows=args.rows)
    for n in range(args.passes):
        for kind in (RADIO, RELATED):
            results = {}
            for code, compute in (("row_by_row", row_by_row), ("batched", batched)):
                wall, cpu = time.perf_counter(), time.process_time()
                results[code] = compute(kind)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                emit(
                    code=code, kind=kind, run=n, lists=len(work[kind]), cpu_s=cpu,
                    cpu_ms_per_list=1000 * cpu / max(1, len(work[kind])), wall_s=wall,
                    loadavg_1m=os.getloadavg()[0],
                )  # fmt: skip
            same = results["row_by_row"] == results["batched"]
            emit(check="same_lists", kind=kind, ok=same)
            if not same:
                return 1
    loaded.bundle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
