"""The track catalogue the text loaders build: first appearance, first names, distinct tags."""

from __future__ import annotations

import pytest

from indexes.datasets.catalogue import Catalogue, NameColumns
from indexes.datasets.tables import BadRow, Fields


def test_rows_come_in_order_of_first_appearance_with_the_first_non_empty_names() -> None:
    c = Catalogue()
    assert c.add(track="t1", artist="a1", track_name="", artist_name="", tags=()) == 0
    assert c.add(track="t2", artist="a2", track_name="Two", artist_name="A Two", tags=()) == 1
    # a later row completes a missing name but never replaces one
    assert c.add(track="t1", artist="a1", track_name="One", artist_name="A One", tags=()) == 0
    assert c.add(track="t2", artist="a2", track_name="Deux", artist_name="B", tags=()) == 1
    assert c.add(track="t3", artist="a1", track_name="", artist_name="", tags=()) == 2
    items = c.items()
    assert items.track_ids.tolist() == ["t1", "t2", "t3"]
    assert items.track_names.tolist() == ["One", "Two", "t3"]  # no name: the id
    assert items.artist_ids.tolist() == ["a1", "a2"]
    assert items.artist_names.tolist() == ["A One", "A Two"]
    assert items.track_artist.tolist() == [0, 1, 0]


def test_each_distinct_track_tag_pair_weighs_one() -> None:
    c = Catalogue()
    c.add(track="t1", artist="a", track_name="", artist_name="", tags=["rock", "indie"])
    c.add(track="t2", artist="a", track_name="", artist_name="", tags=["jazz"])
    c.add(track="t1", artist="a", track_name="", artist_name="", tags=["rock"])
    items = c.items()
    assert items.tag_names.tolist() == ["rock", "indie", "jazz"]
    assert items.track_tags.toarray().tolist() == [[1, 1, 0], [0, 0, 1]]


def test_check_rejects_a_track_under_another_artist() -> None:
    c = Catalogue()
    c.check("t1", "a1")  # unknown track: fine
    c.add(track="t1", artist="a1", track_name="", artist_name="", tags=())
    c.check("t1", "a1")
    with pytest.raises(
        BadRow, match=r"^track 't1' listed under artist 'a2', first seen under 'a1'$"
    ):
        c.check("t1", "a2")


def test_add_row_reads_the_optional_name_and_tag_columns() -> None:
    names = NameColumns.of({"track": 0, "track_name": 2, "tags": 3})
    assert names == NameColumns(track_name=2, artist_name=None, tags=3)
    c = Catalogue()
    row = Fields(["t1", "a1", " Song ", "pop | pop|x"])
    assert c.add_row(row, track="t1", artist="a1", names=names) == 0
    items = c.items()
    assert items.track_names.tolist() == ["Song"] and items.artist_names.tolist() == ["a1"]
    assert items.tag_names.tolist() == ["pop", "x"]
    empty = Catalogue()
    empty.add_row(row, track="t1", artist="a1", names=NameColumns())
    assert empty.items().track_names.tolist() == ["t1"] and len(empty.items().tag_names) == 0


def test_an_empty_catalogue_gives_empty_items() -> None:
    items = Catalogue().items()
    assert items.n_tracks == 0 and items.n_artists == 0 and items.track_tags.shape == (0, 0)
