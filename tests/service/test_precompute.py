"""`segue precompute` into SQLite: every list written, a partial run resumes without redoing work."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from indexes.pipeline import BuildResult
from service.bundle_holder import load
from service.neighbours import RELATED_SIZE, compute_radio, ranked, related
from service.precompute import BATCH_ROWS, compute_lists, list_key, precompute, task_name
from service.recommend import related_artists
from service.settings import Settings
from service.store.base import RADIO, RELATED
from service.store.factory import open_store

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = Settings.defaults()


def test_a_partial_run_resumes_and_the_lists_match_the_service(
    tiny_build: BuildResult, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    config = DEFAULTS.precompute_config(processes=2, chunk_size=100, max_chunks=4)
    bundles = tiny_build.path.parent
    try:
        partial = precompute(bundles=bundles, store=store, config=config)
        assert not partial.complete
        # 4 chunks, then it stopped: the 2 chunks of the 150 artists, 2 of 100 tracks
        assert partial.written == {RELATED: 150, RADIO: 200}
        done_before = {k: store.chunks_done(version=partial.version, task=task_name(k, config))
                       for k in (RADIO, RELATED)}  # fmt: skip
        assert sum(len(c) for c in done_before.values()) == 4

        full = precompute(
            bundles=bundles,
            store=store,
            config=DEFAULTS.precompute_config(processes=2, chunk_size=100),
        )
        assert full.complete
        n_tracks = tiny_build.manifest["entities"]["tracks"]
        n_artists = tiny_build.manifest["entities"]["artists"]
        for kind, n in ((RADIO, n_tracks), (RELATED, n_artists)):
            assert full.skipped[kind] == partial.written[kind]  # finished chunks not redone
            assert full.written[kind] + full.skipped[kind] == n
        again = precompute(
            bundles=bundles, store=store, config=DEFAULTS.precompute_config(chunk_size=100)
        )
        assert sum(again.written.values()) == 0 and again.complete
        assert "complete" in again.summary()

        # the stored lists are what the service computes on a miss
        loaded = load(tiny_build.path, verify_checksums=False, candidates_per_source=50,
                      search_k=None)  # fmt: skip
        try:
            tracks = loaded.bundle.tracks
            for row in (0, 57, n_tracks - 1):
                want = compute_radio(loaded, row=row, size=250, artist_cap=10,
                                     per_source=config.radio_candidates_per_source)  # fmt: skip
                got = store.get(
                    kind=RADIO,
                    version=list_key(RADIO, version=full.version, config=config),
                    key=tracks.id_of(row),
                )
                assert got is not None
                assert got.ids == [tracks.id_of(i.row) for i in want]
                assert got.scores == pytest.approx([i.score for i in want], rel=1e-5)
            listing = related(loaded, store, row=3, limit=20)
            assert listing.origin == "cache" and len(listing.items) == 20
        finally:
            loaded.bundle.close()
    finally:
        store.close()


@pytest.mark.slow
def test_the_command_prints_progress_and_a_summary(tiny_build: BuildResult, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "precompute", "--bundles", str(tiny_build.path.parent),
         "--store", f"sqlite:///{tmp_path / 's.db'}", "--chunk-size", "300", "--processes", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"precompute of bundle {tiny_build.version}: complete" in out.stdout
    assert "chunks of 300" in out.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "service.cli", "precompute", "--bundles", str(tmp_path / "none"),
         "--store", f"sqlite:///{tmp_path / 's.db'}"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and "segue precompute:" in bad.stderr


@pytest.mark.parametrize(
    ("size", "artist_cap", "per_source"), [(250, 10, 250), (60, 1, 30), (5, 3, 50)]
)
def test_batched_lists_are_the_lists_computed_row_by_row(
    tiny_build: BuildResult, size: int, artist_cap: int, per_source: int
) -> None:
    """compute_lists ranks many rows at once; every list, score for score, is the one the
    service computes for that row alone, whatever the batch holds."""
    loaded = load(tiny_build.path, verify_checksums=False, candidates_per_source=50,
                  search_k=None)  # fmt: skip
    config = dataclasses.replace(
        DEFAULTS.precompute_config(), radio_size=size, radio_artist_cap=artist_cap,
        radio_candidates_per_source=per_source,
    )  # fmt: skip
    shape = {"size": size, "artist_cap": artist_cap, "per_source": per_source}
    try:
        tracks, artists = loaded.bundle.tracks, loaded.bundle.artists
        # more than one batch, not from row 0, in no particular order
        rows = [*range(7, 7 + BATCH_ROWS + 30), len(tracks) - 1, 3]
        got = compute_lists(loaded, kind=RADIO, rows=rows, config=config)
        want = [
            (tracks.id_of(r), ranked(loaded, compute_radio(loaded, row=r, **shape))) for r in rows
        ]
        assert [g[0] for g in got] == [w[0] for w in want]
        for (key, g), (_, w) in zip(got, want, strict=True):
            assert g == w, key  # ids, rows and float scores equal, not approximately
        one_by_one = [
            compute_lists(loaded, kind=RADIO, rows=[r], config=config)[0] for r in rows[:5]
        ]
        assert one_by_one == got[:5]

        rows = list(range(len(artists)))
        got = compute_lists(loaded, kind=RELATED, rows=rows, config=config)
        want = [
            (artists.id_of(r), ranked(loaded, related_artists(loaded, row=r, limit=RELATED_SIZE),
                                      entity="artists"))
            for r in rows
        ]  # fmt: skip
        assert got == want
    finally:
        loaded.bundle.close()
