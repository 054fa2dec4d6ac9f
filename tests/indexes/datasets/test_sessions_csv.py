import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from indexes.datasets.sessions_csv import load_sessions_csv

FIXTURES = Path(__file__).parents[2] / "fixtures" / "datasets"
POSITIONS = FIXTURES / "sessions_positions.csv"
TIMESTAMPS = FIXTURES / "sessions_timestamps.csv"


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_positions_report():
    ds = load_sessions_csv(POSITIONS)
    f = ds.report.files[0]
    assert f.path == str(POSITIONS)
    # line 6 holds only spaces: blank; line 7 repeats (s1, 2, t2): kept once
    assert (f.rows, f.loaded, f.bad, f.duplicates, f.blank) == (14, 8, 6, 1, 1)
    assert f.bad_examples == [
        (9, "position 'x' is not an integer"),
        (10, "position '1.5' is not an integer"),
        (11, "track 't1' listed under artist 'a2', first seen under 'a1'"),
        (12, "empty session"),
        (13, "empty track"),
        (14, "expected 7 fields, got 4"),
    ]


def test_positions_sequences_in_position_order():
    ds = load_sessions_csv(POSITIONS)
    assert ds.name == f"sessions:{POSITIONS}"
    items = ds.items
    assert items.track_ids.tolist() == ["t2", "t1", "t3", "t4"]
    assert items.track_names.tolist() == ["Two", "One", "Three", "Four"]
    assert items.artist_ids.tolist() == ["a1", "a2", "a3"]
    assert items.artist_names.tolist() == ["Artist One", "Artist Two", "a3"]
    assert items.track_artist.tolist() == [0, 0, 1, 2]
    assert items.tag_names.tolist() == ["rock", "jazz"]
    assert items.track_tags.toarray().tolist() == [[0, 0], [1, 0], [1, 1], [0, 0]]

    # no user column: every session is its own user
    assert ds.user_ids.tolist() == ["s1", "s2", "s3"]
    seqs = ds.sequences
    assert seqs.ordered is True
    assert seqs.user.tolist() == [0, 1, 2]
    # s1: positions 1, 2, 3 -> t1, t2, t1; s2: position 0 (t2), then the tie at position 1 in
    # file order (t3 before t4); s3: t4
    assert [[items.track_ids[i] for i in s] for s in seqs] == [
        ["t1", "t2", "t1"],
        ["t2", "t3", "t4"],
        ["t4"],
    ]
    assert seqs.indptr.tolist() == [0, 3, 6, 7]
    assert seqs.items.dtype == np.int32
    assert all(math.isnan(t) for t in seqs.timestamp)
    assert not seqs.has_time

    assert ds.interactions_from_sequences is True
    assert ds.interactions.dtype == np.float32
    assert ds.interactions.toarray().tolist() == [[1, 2, 0, 0], [1, 0, 1, 1], [0, 0, 0, 1]]


def test_timestamps_report():
    ds = load_sessions_csv(TIMESTAMPS)
    f = ds.report.files[0]
    # line 7 repeats (s1, 12:00:00Z, t1) as unix seconds: kept once
    assert (f.rows, f.loaded, f.bad, f.duplicates, f.blank) == (12, 8, 4, 1, 1)
    assert f.bad_examples == [
        (10, "session 's2' listed under user 'carol', first seen under 'bob'"),
        (11, "timestamp 'yesterday' is neither unix seconds nor ISO 8601"),
        (12, "timestamp 'inf' is not finite"),
        (13, "empty user"),
    ]


def test_timestamps_sequences_order_users_and_start_times():
    ds = load_sessions_csv(TIMESTAMPS)
    items = ds.items
    assert items.track_ids.tolist() == ["t2", "t1", "t3", "t4"]
    assert items.track_names.tolist() == ["t2", "t1", "t3", "t4"]
    assert len(items.tag_names) == 0
    assert items.track_tags.shape == (4, 0)

    assert ds.user_ids.tolist() == ["alice", "bob", "carol"]
    seqs = ds.sequences
    assert seqs.ordered is True
    assert seqs.user.tolist() == [0, 1, 1, 2]
    # s1: 12:00 t1, then t2 (ISO) and t3 (unix) both at 12:02 in file order;
    # s3: the naive 10:00 (UTC) comes after 09:59Z
    assert [[items.track_ids[i] for i in s] for s in seqs] == [
        ["t1", "t2", "t3"],
        ["t1"],
        ["t3", "t2"],
        ["t4"],
    ]
    assert seqs.has_time
    assert seqs.timestamp.tolist() == [
        utc(2024, 5, 1, 12, 0),
        utc(2024, 5, 2, 6, 0),  # 08:00+02:00
        utc(2024, 5, 3, 9, 59),
        1714600000.0,
    ]
    assert ds.interactions.toarray().tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]]


def test_select_sequences_follows_interactions():
    ds = load_sessions_csv(TIMESTAMPS)
    sub = ds.select_sequences(np.array([True, False, False, True]))
    assert sub.interactions.toarray().tolist() == [[1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]]


def test_missing_order_column_is_a_usage_error(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("session,track,artist\ns1,t1,a1\n")
    with pytest.raises(ValueError, match=r"s\.csv.*position or timestamp"):
        load_sessions_csv(path)


def test_missing_required_column_names_it(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("session,position,song,artist\ns1,1,t1,a1\n")
    with pytest.raises(ValueError, match=r"s\.csv.*track"):
        load_sessions_csv(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"nothere\.csv"):
        load_sessions_csv(tmp_path / "nothere.csv")


def test_header_only_file_gives_an_empty_dataset(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("session,timestamp,track,artist,user\n")
    ds = load_sessions_csv(path)
    assert ds.items.n_tracks == 0
    assert ds.n_users == 0
    assert len(ds.sequences) == 0
    assert ds.sequences.indptr.tolist() == [0]
    assert ds.interactions.shape == (0, 0)
    assert ds.report.files[0].rows == 0


def test_ids_round_trip_exactly_and_blank_ids_are_bad_rows(tmp_path: Path) -> None:
    """Session, user, track and artist ids are not stripped; positions and timestamps are read
    without their surrounding whitespace."""
    path = tmp_path / "ids.csv"
    path.write_text(
        "user,session,timestamp,track,artist\n"
        "alice ,s1, 2024-05-01T12:00:00Z ,a/b,50%\n"
        "alice , s1,1714564860 ,a/b ,50%\n"
        "alice ,s1,1714564920,#1 ,Zoë ñ 東京\n"
        " ,s2,1714564800,t1,a1\n"
        "bob,  ,1714564800,t1,a1\n"
        "bob,s2,1714564800,t1, \n",
        encoding="utf-8",
    )
    ds = load_sessions_csv(path)
    f = ds.report.files[0]
    assert (f.rows, f.loaded, f.bad) == (6, 3, 3)
    assert f.bad_examples == [
        (5, "user ' ' is only whitespace"),
        (6, "session '  ' is only whitespace"),
        (7, "artist ' ' is only whitespace"),
    ]
    items = ds.items
    assert items.track_ids.tolist() == ["a/b", "a/b ", "#1 "]
    assert items.artist_ids.tolist() == ["50%", "Zoë ñ 東京"]
    assert ds.user_ids.tolist() == ["alice "]
    # "s1" and " s1" are two sessions of the same user
    assert [[items.track_ids[i] for i in s] for s in ds.sequences] == [["a/b", "#1 "], ["a/b "]]
    assert ds.sequences.timestamp.tolist() == [utc(2024, 5, 1, 12, 0), 1714564860.0]


def test_timestamps_fill_item_times_in_sequence_order():
    seqs = load_sessions_csv(TIMESTAMPS).sequences
    assert seqs.times is not None
    assert seqs.times.dtype == np.float64
    assert len(seqs.times) == seqs.n_items
    assert seqs.has_item_times
    # the same order as the items: s1 12:00 t1, 12:02 t2, 12:02 t3; s2; s3 09:59Z, 10:00 (UTC); s5
    assert seqs.times.tolist() == [
        utc(2024, 5, 1, 12, 0),
        utc(2024, 5, 1, 12, 2),
        utc(2024, 5, 1, 12, 2),
        utc(2024, 5, 2, 6, 0),
        utc(2024, 5, 3, 9, 59),
        utc(2024, 5, 3, 10, 0),
        1714600000.0,
    ]
    assert seqs.time_span() == (utc(2024, 5, 1, 12, 0), utc(2024, 5, 3, 10, 0))
    sub = seqs.select(np.array([False, False, True, True]))
    assert sub.times is not None
    assert sub.times.tolist() == [utc(2024, 5, 3, 9, 59), utc(2024, 5, 3, 10, 0), 1714600000.0]


def test_positions_without_timestamps_have_no_item_times():
    seqs = load_sessions_csv(POSITIONS).sequences
    assert seqs.times is None
    assert not seqs.has_item_times
    assert seqs.time_span() is None


def test_positions_with_timestamps_give_times_in_position_order(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "session,position,timestamp,track,artist\n"
        "s1,2,1000,t2,a1\n"
        "s1,1,2000,t1,a1\n"
        "s2,1,500,t3,a1\n"
    )
    seqs = load_sessions_csv(path).sequences
    assert [s.tolist() for s in seqs] == [[1, 0], [2]]
    assert seqs.times is not None
    assert seqs.times.tolist() == [2000.0, 1000.0, 500.0]
