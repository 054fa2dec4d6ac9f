"""Quality as a user measures it: next-track hit rate of the radio neighbours served over HTTP.

    PYTHONPATH=. python loadtest/quality_http.py --dataset plays-at:FILE --test-from 2025-07-05
        [--max-seeds 2000] [--out DIR]

What the issue's authors did on their own station, end to end: the plays before the test date
are exported as a sessions CSV (session, timestamp, track, artist), `segue build` reads it with
its defaults, `segue serve` serves the bundle, and each test play's previous track is asked for
`/v1/tracks/{id}/radio-neighbours?limit=250`; a hit at K is the next track among the first K.
The plain baselines are computed from the same training plays, on the same test plays. One
figure per line (`key=value`); progress on stderr. Not a test: it builds a real bundle (minutes).

`segue evaluate --split time` measures the same lists without HTTP; this checks that what the
service serves is what that table says.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np

from indexes.datasets.registry import load_dataset
from indexes.datasets.shape import Dataset
from indexes.evaluate_time import TimeEvalConfig, plain_baselines, wilson
from indexes.splits import next_track_pairs, played_before
from loadtest.common import HOST, REPO, emit, free_port, log, running

KS = (10, 50, 250)


def export_sessions(data: Dataset, path: Path) -> None:
    """The data set's plays as a sessions CSV, as a station would export them."""
    seqs = data.sequences
    assert seqs.times is not None
    items = data.items
    with_user = not (len(seqs) == data.n_users and (seqs.user == np.arange(len(seqs))).all())
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["session", "timestamp", "track", "artist", "track_name", "artist_name"]
                   + (["user"] if with_user else []))  # fmt: skip
        for s in range(len(seqs)):
            a, b = int(seqs.indptr[s]), int(seqs.indptr[s + 1])
            for t, when in zip(seqs.items[a:b].tolist(), seqs.times[a:b].tolist(), strict=True):
                artist = int(items.track_artist[t])
                row = [
                    f"s{s}",
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
                    items.track_ids[t],
                    items.artist_ids[artist],
                    items.track_names[t],
                    items.artist_names[artist],
                ]
                w.writerow(row + ([data.user_ids[seqs.user[s]]] if with_user else []))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="a data set with play times (plays-at:FILE)")
    p.add_argument("--test-from", required=True, help="first test day, YYYY-MM-DD (UTC)")
    p.add_argument("--max-seeds", type=int, default=2000, help="distinct previous tracks asked")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, help="working directory (default: a temporary one)")
    args = p.parse_args()
    test_from = time.mktime(time.strptime(args.test_from, "%Y-%m-%d")) - time.timezone
    data = load_dataset(args.dataset)
    train = played_before(data, test_from)
    pairs = next_track_pairs(data, start=test_from, end=math.inf)
    played = np.bincount(train.sequences.items, minlength=data.items.n_tracks) > 0
    pairs = pairs.take(played[pairs.prev])
    seeds = np.unique(pairs.prev)
    if len(seeds) > args.max_seeds:
        seeds = np.sort(
            np.random.default_rng(args.seed).choice(seeds, args.max_seeds, replace=False)
        )
        pairs = pairs.take(np.isin(pairs.prev, seeds))
    log(f"{len(pairs)} test plays after {len(seeds)} distinct known tracks")
    with tempfile.TemporaryDirectory(prefix="segue-quality-") as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        export_sessions(train, work / "train.csv")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "service.cli", "build", "--dataset",
             f"sessions:{work / 'train.csv'}", "--out", str(work / "bundles")],
            check=True, cwd=REPO, env=env,
        )  # fmt: skip
        emit(stage="build", seconds=time.perf_counter() - started)
        os.environ["SEGUE_STORE"] = f"sqlite:///{work / 'store.db'}"
        port = free_port()
        lists: dict[int, list[str]] = {}
        with running(bundles=work / "bundles", workers=2, port=port) as server:
            base = f"http://{HOST}:{port}"
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(600):
                    server.check_alive()
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.5)
                started = time.perf_counter()
                for n, s in enumerate(seeds.tolist()):
                    track = quote(str(data.items.track_ids[s]), safe="")
                    r = client.get(f"/v1/tracks/{track}/radio-neighbours", params={"limit": 250})
                    r.raise_for_status()
                    lists[s] = [item["id"] for item in r.json()["items"]]
                    if n % 500 == 0:
                        log(f"{n}/{len(seeds)} lists")
                emit(stage="radio_lists", n=len(seeds), seconds=time.perf_counter() - started)
    seed_row = {int(s): i for i, s in enumerate(seeds.tolist())}
    baselines = plain_baselines(
        train, seeds=seeds, depth=max(KS), config=TimeEvalConfig(), as_of=test_from
    )
    ids = data.items.track_ids
    rows: dict[str, list[list[str]]] = {"radio (HTTP)": [lists[int(s)] for s in seeds]}
    for name, top in baselines.items():
        rows[name] = [[str(ids[r]) for r in top(i)] for i in range(len(seeds))]
    for name, per_seed in rows.items():
        hits = dict.fromkeys(KS, 0)
        for prev, nxt in zip(pairs.prev.tolist(), pairs.next.tolist(), strict=True):
            ranked = per_seed[seed_row[prev]]
            want = str(ids[nxt])
            if want in ranked:
                at = ranked.index(want)
                for k in KS:
                    hits[k] += int(at < k)
        fields: dict[str, object] = {"list": f'"{name}"', "pairs": len(pairs)}
        for k in KS:
            lo, hi = wilson(hits[k], len(pairs))
            fields[f"hr@{k}"] = round(hits[k] / len(pairs), 4)
            fields[f"ci95@{k}"] = f"{lo:.4f}..{hi:.4f}"
        emit(**fields)
    return 0


if __name__ == "__main__":
    sys.exit(main())
