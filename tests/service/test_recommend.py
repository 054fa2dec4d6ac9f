"""The recommendation logic and the bundle holder, without HTTP."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexes.pipeline import BuildResult
from service import recommend
from service.bundle_holder import BundleHolder, NoBundle, load


@pytest.fixture(scope="module")
def loaded(tiny_build: BuildResult):  # type: ignore[no-untyped-def]
    lb = load(tiny_build.path, verify_checksums=True, candidates_per_source=50, search_k=None)
    yield lb
    lb.bundle.close()


def test_artist_cap_holds_for_every_source(loaded) -> None:  # type: ignore[no-untyped-def]
    artist = loaded.bundle.tracks.artist
    for source in recommend.sources(loaded, entity="tracks"):
        for cap in (1, 2, 3):
            items = recommend.similar_tracks(
                loaded, row=10, limit=20, source=source, artist_cap=cap
            )
            assert 0 < len(items) <= 20
            assert max(Counter(int(artist[i.row]) for i in items).values()) <= cap
            assert 10 not in [i.row for i in items]


def test_cap_per_artist_keeps_order() -> None:
    rows = np.array([5, 6, 7, 8, 9], dtype=np.int32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)
    artist = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2], dtype=np.int32)
    kept = recommend.cap_per_artist(rows, scores, artist=artist, cap=2, limit=10)
    assert [i.row for i in kept] == [5, 6, 8, 9]
    assert [
        i.row for i in recommend.cap_per_artist(rows, scores, artist=artist, cap=2, limit=3)
    ] == [5, 6, 8]


@settings(max_examples=300, deadline=None)
@given(
    artists=st.lists(st.integers(0, 6), min_size=0, max_size=60),
    cap=st.integers(1, 4),
    limit=st.integers(1, 30),
)
def test_cap_per_artist_is_the_plain_loop(artists: list[int], cap: int, limit: int) -> None:
    """The vectorised cap gives what the obvious loop gives, for any order of artists."""
    artist = np.asarray(artists, dtype=np.int32)
    rows = np.arange(len(artist), dtype=np.int32)[::-1].copy()  # any order of rows
    scores = np.linspace(1, 0, len(rows)).astype(np.float32)
    want, per = [], Counter[int]()
    for r in rows.tolist():
        if per[int(artist[r])] < cap and len(want) < limit:
            per[int(artist[r])] += 1
            want.append(r)
    got = recommend.cap_per_artist(rows, scores, artist=artist, cap=cap, limit=limit)
    assert [i.row for i in got] == want
    assert all(isinstance(i.row, int) and isinstance(i.score, float) for i in got)


def test_user_recommendations_leave_out_played_tracks(loaded) -> None:  # type: ignore[no-untyped-def]
    users = loaded.bundle.users
    assert users is not None and "als" in users.vectors
    for user in (0, 5, 17):
        played = set(users.plays(user)[0].tolist())
        items = recommend.user_recommendations(loaded, user=user, limit=10, artist_cap=2)
        assert len(items) == 10
        assert not played & {i.row for i in items}
        assert all(i.reason for i in items)


def test_validation_users_get_vectors_too(loaded, tiny_build: BuildResult) -> None:  # type: ignore[no-untyped-def]
    users = loaded.bundle.users
    vectors = np.asarray(users.vectors["als"])
    has_plays = np.diff(np.asarray(users.plays_indptr)) > 0
    assert (np.abs(vectors[has_plays]).sum(axis=1) > 0).all()


def test_search_is_case_insensitive_and_most_listened_first(loaded) -> None:  # type: ignore[no-untyped-def]
    tracks = loaded.bundle.tracks
    name = tracks.names[3]
    word = name.split()[-1]
    rows = recommend.search(tracks, query=word.swapcase(), limit=500)
    assert 3 in rows or len(rows) == 500
    assert all(word.lower() in tracks.names[r].lower() for r in rows)
    listeners = np.asarray(tracks.listeners)[rows]
    assert (np.diff(listeners) <= 0).all()
    assert recommend.search(tracks, query="", limit=4) == [0, 1, 2, 3]
    assert recommend.search(tracks, query="zzzz-not-a-name", limit=4) == []


def test_track_search_matches_artist_names_as_well_as_titles(loaded) -> None:  # type: ignore[no-untyped-def]
    bundle = loaded.bundle
    tracks, artists = bundle.tracks, bundle.artists
    artist_of = np.asarray(tracks.artist)
    # an artist name word that no track title holds: only the artist can bring its tracks
    titles = " ".join(tracks.names[r].casefold() for r in range(len(tracks)))
    row, word = next(
        (a, w)
        for a in range(len(artists))
        for w in artists.names[a].split()
        if len(w) > 3 and w.casefold() not in titles
    )
    by_artist = {
        r
        for r in range(len(tracks))
        if word.casefold() in artists.names[int(artist_of[r])].casefold()
    }
    assert int(np.flatnonzero(artist_of == row)[0]) in by_artist
    assert recommend.search(tracks, query=word, limit=500) == []  # titles alone find nothing
    rows = recommend.search_tracks(bundle, query=word.upper(), limit=500)
    assert set(rows) == by_artist
    assert (np.diff(np.asarray(tracks.listeners)[rows]) <= 0).all()
    # a title word still finds its tracks, and both kinds of match come together
    title = tracks.names[3].split()[-1]
    found = set(recommend.search_tracks(bundle, query=title, limit=500))
    assert set(recommend.search(tracks, query=title, limit=500)) <= found
    assert all(
        title.casefold() in tracks.names[r].casefold()
        or title.casefold() in artists.names[int(artist_of[r])].casefold()
        for r in found
    )
    assert recommend.search_tracks(bundle, query="", limit=4) == [0, 1, 2, 3]
    assert recommend.search_tracks(bundle, query="zzzz-not-a-name", limit=4) == []


def test_sources_of_names_the_sources_whose_lists_hold_each_item(loaded) -> None:  # type: ignore[no-untyped-def]
    scorer = loaded.scorers["tracks"]
    row, per_source = 10, 30
    items = recommend.similar_tracks(loaded, row=row, limit=15, source="ensemble", artist_cap=2,
                                     per_source=per_source)  # fmt: skip
    found = recommend.sources_of(
        loaded, row=row, rows=[i.row for i in items], per_source=per_source
    )
    assert len(found) == len(items)
    # every ensemble candidate came from some source's list
    assert all(found)
    for item, sources in zip(items, found, strict=True):
        for source in [*scorer.models, *scorer.table_names]:
            in_list = item.row in scorer.top(row, per_source, source=source)[0].tolist()
            assert (source in sources) == in_list, (item.row, source)


def test_holder_swaps_and_closes_the_old_bundle_after_its_last_request(
    tiny_build: BuildResult, tmp_path: Path
) -> None:
    import shutil

    from indexes.bundle import publish

    root = tmp_path / "root"
    root.mkdir()
    staging = root / ".staging-a"
    shutil.copytree(tiny_build.path, staging)
    publish(staging=staging, root=root, version="a")
    holder = BundleHolder(root, verify_checksums=True, candidates_per_source=50, search_k=None)
    with pytest.raises(NoBundle), holder.use():
        pass
    assert holder.refresh() is True and holder.refresh() is False
    with holder.use() as old:
        staging = root / ".staging-b"
        shutil.copytree(tiny_build.path, staging)
        publish(staging=staging, root=root, version="b")
        assert holder.refresh() is True
        assert old.retired and not old.closed  # a request still uses it
        assert (
            old.bundle.indexes[("als", "tracks")]
            .neighbours(int(old.bundle.indexes[("als", "tracks")].rows[0]), 5)[0]
            .size
        )
        with holder.use() as new:
            assert new is not old and new.bundle.path.name == "b"
    assert old.closed
    holder.close()


def test_a_prefetched_miss_is_not_read_again(loaded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Tracks that a station's prefetch found without a cached list are computed on demand
    without a second store read; found ones come from the prefetch."""
    from service.settings import Settings
    from service.stations import BundleCatalogue
    from service.store.sqlite import SqliteStore

    class Counting(SqliteStore):
        gets = 0

        def get(self, **kw):  # type: ignore[no-untyped-def]
            Counting.gets += 1
            return super().get(**kw)

    store = Counting(path=tmp_path / "s.db")
    tracks = [loaded.bundle.tracks.id_of(r) for r in (1, 2)]
    config = Settings.defaults().station_config()
    warm = BundleCatalogue(loaded, store, version=loaded.version, variant="control", config=config)
    first = warm.neighbours(tracks[0])  # computed and written back
    assert first and Counting.gets == 1
    cat = BundleCatalogue(loaded, store, version=loaded.version, variant="control", config=config)
    cat.prefetch(tracks)
    assert cat.neighbours(tracks[0]) == first  # from the prefetch
    assert cat.neighbours(tracks[1])  # not in the store: computed
    assert Counting.gets == 1  # neither asked the store again
    store.close()
