"""Opening a bundle: ids, names and mmapped indexes read back, similarities, the ANN observer."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.bundle import open_bundle
from indexes.datasets.shape import Dataset
from indexes.pipeline import BuildResult


def test_round_trip(tiny_build: BuildResult, tiny_data: Dataset) -> None:
    items = tiny_data.items
    with open_bundle(tiny_build.path.parent) as b:  # the root: follows `current`
        assert b.path == tiny_build.path
        assert b.version == tiny_build.version
        assert len(b.tracks) == items.n_tracks and len(b.artists) == items.n_artists
        for row in (0, 1, 77, items.n_tracks - 1):
            tid = str(items.track_ids[row])
            assert b.tracks.row_of(tid) == row
            assert b.tracks.id_of(row) == tid
            assert b.tracks.names[row] == items.track_names[row]
            assert b.tracks.artist is not None and b.tracks.artist[row] == items.track_artist[row]
        assert b.artists.row_of(str(items.artist_ids[3])) == 3
        for missing in ("nope", "", "t" * 200, "t0001\x00"):
            assert b.tracks.row_of(missing) is None
        assert {(m, e) for m, e in b.indexes} == {
            (m, e) for m in ("als", "word2vec", "content") for e in ("tracks", "artists")
        }
        for ix in b.indexes.values():
            assert mapped(ix.rows) and mapped(ix.slots)  # shared by processes, not copied
            assert ix.vectors is not None and mapped(ix.vectors)
            assert type(ix.rows) is np.ndarray  # no np.memmap overhead on every index op
            assert ix.index.get_n_items() == ix.n_items
            row = int(ix.rows[0])
            rows, dists = ix.neighbours(row, 10)
            assert len(rows) == 10 and row not in rows and (np.diff(dists) >= -1e-6).all()
        with pytest.raises(IndexError):
            b.indexes[("als", "tracks")].neighbours(10**9, 5)


def mapped(a: object) -> bool:
    """Whether an array's memory is a file mapping (an np.memmap somewhere down its bases)."""
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = getattr(a, "base", None)
    return False


def test_vectorised_similarities_match_annoy(tiny_build: BuildResult) -> None:
    """The zero-copy view into the .ann file gives Annoy's own cosine similarities."""
    with open_bundle(tiny_build.path) as b:
        for ann in b.indexes.values():
            assert ann.vectors is not None and ann.vectors.shape == (ann.n_items, ann.dims)
            a = int(ann.rows[3])
            rows = np.arange(min(200, len(ann.slots)), dtype=np.int32)
            fast = ann.similarities(a, rows)
            slow = np.array([ann.similarity(a, int(r)) for r in rows], dtype=np.float32)
            assert np.allclose(fast, slow, atol=1e-4)


def test_open_bundle_gives_every_index_the_ann_observer(tiny_build: BuildResult) -> None:
    """The service's latency metric is passed in, not patched onto each index afterwards."""
    seen: list[tuple[str, str]] = []
    with open_bundle(tiny_build.path, on_ann_query=lambda m, e, _s: seen.append((m, e))) as b:
        keys = list(b.indexes)
        for ix in b.indexes.values():
            ix.neighbours(int(ix.rows[0]), 3)
        assert b.users is not None
        als = b.indexes[("als", "tracks")]
        rows, sims = als.nearest_to_vector(b.users.vectors["als"][0], n=5)
        assert len(rows) == 5 and (np.diff(sims) <= 1e-6).all()
    assert seen == [*keys, ("als", "tracks")]
    # the typed manifest says what the JSON says
    assert b.typed_manifest.to_json() == b.manifest
