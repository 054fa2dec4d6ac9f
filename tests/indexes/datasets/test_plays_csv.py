import math
from pathlib import Path

import numpy as np
import pytest

from indexes.datasets.plays_csv import load_plays_csv

PLAYS = Path(__file__).parents[2] / "fixtures" / "datasets" / "plays.csv"


def test_report_counts_and_line_numbers():
    ds = load_plays_csv(PLAYS)
    assert len(ds.report.files) == 1
    f = ds.report.files[0]
    assert f.path == str(PLAYS)
    assert (f.rows, f.loaded, f.bad, f.duplicates, f.blank) == (16, 8, 8, 1, 1)
    assert f.bad_examples == [
        (9, "track 't1' listed under artist 'a2', first seen under 'a1'"),
        (10, "count 'x' is not a number"),
        (11, "count '-1' is negative"),
        (12, "count 'inf' is not finite"),
        (13, "empty user"),
        (14, "expected 7 fields, got 4"),
        (15, "malformed CSV (unexpected end of data)"),
        (16, "empty artist"),
    ]


def test_catalogue_names_and_tags():
    ds = load_plays_csv(PLAYS)
    items = ds.items
    assert ds.name == f"plays:{PLAYS}"
    assert ds.tracks_are_artists is False
    # BOM stripped and header matched case-insensitively; bad rows add nothing (t5 is absent)
    assert items.track_ids.tolist() == ["t1", "t2", "t3", "t4", "t6"]
    # the quoted comma survives; the last line is latin-1
    assert items.track_names.tolist() == [
        "Song One",
        "Song Two",
        "Song, Three",
        "Song Four",
        "Jóga",
    ]
    assert items.artist_ids.tolist() == ["a1", "a2", "a3", "a4"]
    # a3 never has a name: it falls back to its id
    assert items.artist_names.tolist() == ["Artist One", "Artist Two", "a3", "Björk"]
    # t1 keeps its first artist a1 although line 9 lists it under a2
    assert items.track_artist.tolist() == [0, 0, 1, 2, 3]
    assert items.tag_names.tolist() == ["rock", "indie", "jazz"]
    # one per distinct (track, tag), however many rows list it
    assert items.track_tags.toarray().tolist() == [
        [1, 1, 0],
        [1, 0, 0],
        [0, 0, 1],
        [0, 0, 0],
        [0, 0, 0],
    ]


def test_interactions_sum_duplicates():
    ds = load_plays_csv(PLAYS)
    assert ds.user_ids.tolist() == ["u1", "u2", "u3", "u4"]
    assert ds.interactions.dtype == np.float32
    # u1/t1 = 3 + 4 (duplicate row); u3/t3 = 2.5; u4/t4 has count 0: no stored entry
    assert ds.interactions.toarray().tolist() == [
        [7, 1, 0, 0, 0],
        [2, 0, 5, 0, 0],
        [0, 0, 2.5, 0, 1],
        [0, 0, 0, 0, 0],
    ]
    assert ds.interactions.nnz == 6
    assert ds.interactions_from_sequences is False


def test_sequences_are_unordered_per_user_most_played_first():
    ds = load_plays_csv(PLAYS)
    seqs = ds.sequences
    assert seqs.ordered is False
    assert [s.tolist() for s in seqs] == [[0, 1], [2, 0], [2, 4], []]
    assert seqs.user.tolist() == [0, 1, 2, 3]
    assert all(math.isnan(t) for t in seqs.timestamp)


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("user,track,artist,plays\nu1,t1,a1,3\n")
    with pytest.raises(ValueError, match=r"p\.csv.*count"):
        load_plays_csv(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"nothere\.csv"):
        load_plays_csv(tmp_path / "nothere.csv")


def test_header_only_file_gives_an_empty_dataset(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"\xef\xbb\xbf\nuser,track,artist,count\r\n\r\n")
    ds = load_plays_csv(path)
    assert ds.items.n_tracks == 0
    assert ds.n_users == 0
    assert ds.interactions.shape == (0, 0)
    assert len(ds.sequences) == 0
    f = ds.report.files[0]
    assert (f.rows, f.loaded, f.bad, f.blank) == (0, 0, 0, 2)


def test_file_without_header_is_a_usage_error(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\n")
    with pytest.raises(ValueError, match=r"blank\.csv.*user, track, artist, count"):
        load_plays_csv(path)
