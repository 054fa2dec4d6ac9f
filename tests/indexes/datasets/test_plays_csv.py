import math
from pathlib import Path

import numpy as np
import pytest

from indexes.datasets.plays_csv import load_plays_csv
from indexes.signals import SignalConfig, compute_signals, recent_name

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


def test_ids_round_trip_exactly_and_blank_ids_are_bad_rows(tmp_path: Path) -> None:
    """Ids are not stripped: surrounding whitespace, `/`, `%`, `?`, `#` and unicode stay as
    written. Names, counts and tags are still read without their surrounding whitespace."""
    path = tmp_path / "ids.csv"
    path.write_text(
        "user,track,artist,count,track_name,artist_name,tags\n"
        "u1,shy fx & t-power - ,shy fx , 3 , Original Nuttah ,  Shy FX  , jungle | dnb \n"
        "u1,shy fx & t-power -,shy fx,1,,,\n"
        " u2 ,a/b,50%,2,,,\n"
        'u2,"  quoted  ",#1,1,,,\n'
        "u2,what?,Zoë ñ 東京,1,,,\n"
        "u3,   ,a1,1,,,\n"
        "u3,t9,\t,1,,,\n"
        ",t9,a1,1,,,\n",
        encoding="utf-8",
    )
    ds = load_plays_csv(path)
    f = ds.report.files[0]
    assert (f.rows, f.loaded, f.bad) == (8, 5, 3)
    assert f.bad_examples == [
        (7, "track '   ' is only whitespace"),
        (8, "artist '\\t' is only whitespace"),
        (9, "empty user"),
    ]
    items = ds.items
    assert items.track_ids.tolist() == [
        "shy fx & t-power - ",
        "shy fx & t-power -",
        "a/b",
        "  quoted  ",
        "what?",
    ]
    assert items.artist_ids.tolist() == ["shy fx ", "shy fx", "50%", "#1", "Zoë ñ 東京"]
    assert ds.user_ids.tolist() == ["u1", " u2 ", "u2"]  # " u2 " and "u2" are two users
    # names and tags lose their surrounding whitespace; a missing name falls back to the exact id
    assert items.track_names.tolist() == [
        "Original Nuttah",
        "shy fx & t-power -",
        "a/b",
        "  quoted  ",
        "what?",
    ]
    assert items.artist_names.tolist() == ["Shy FX", "shy fx", "50%", "#1", "Zoë ñ 東京"]
    assert items.tag_names.tolist() == ["jungle", "dnb"]
    assert ds.interactions.toarray().tolist() == [
        [3, 1, 0, 0, 0],
        [0, 0, 2, 0, 0],
        [0, 0, 0, 1, 1],
    ]


DAY = 86400.0
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def test_timestamps_become_item_times_parallel_to_items(tmp_path: Path) -> None:
    path = tmp_path / "timed.csv"
    path.write_text(
        "user,track,artist,count,timestamp\n"
        f"u1,t1,a1,1,{T0:.0f}\n"
        "u1,t2,a1,5,2023-11-15T22:13:20Z\n"  # T0 + 1 day
        "u2,t1,a1,2,2023-11-13T22:13:20\n"  # no zone: UTC, T0 - 1 day
        f"u2,t3,a2,3,{T0 + 0.5:.1f}\n"
        f"u3,t3,a2,0,{T0:.0f}\n"  # no plays: not in the sequence
    )
    ds = load_plays_csv(path)
    assert ds.report.files[0].bad == 0
    seqs = ds.sequences
    assert seqs.ordered is False
    # most played first, as without times
    assert [s.tolist() for s in seqs] == [[1, 0], [2, 0], []]
    assert seqs.times is not None
    assert seqs.times.tolist() == [T0 + DAY, T0, T0 + 0.5, T0 - DAY]
    assert seqs.has_item_times
    # a sequence starts at its user's earliest time; no plays, no start
    assert seqs.timestamp[:2].tolist() == [T0, T0 - DAY]
    assert math.isnan(seqs.timestamp[2])
    assert seqs.time_span() == (T0 - DAY, T0 + DAY)


def test_repeated_pair_keeps_the_latest_time_and_last_played_is_an_alias(tmp_path: Path) -> None:
    path = tmp_path / "repeats.csv"
    path.write_text(
        "user,track,artist,count,last_played\n"
        f"u1,t1,a1,3,{T0 + 10:.0f}\n"
        f"u1,t1,a1,4,{T0 + 30:.0f}\n"
        f"u1,t1,a1,1,{T0 + 20:.0f}\n"
        f"u1,t2,a1,1,{T0:.0f}\n"
    )
    ds = load_plays_csv(path)
    f = ds.report.files[0]
    assert (f.rows, f.loaded, f.duplicates, f.bad) == (4, 4, 2, 0)
    assert ds.interactions.toarray().tolist() == [[8, 1]]
    assert [s.tolist() for s in ds.sequences] == [[0, 1]]
    assert ds.sequences.times is not None
    assert ds.sequences.times.tolist() == [T0 + 30, T0]
    assert ds.sequences.timestamp.tolist() == [T0]


def test_bad_timestamp_is_a_bad_row_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad_times.csv"
    path.write_text(
        "user,track,artist,count,timestamp\n"
        f"u1,t1,a1,1,{T0:.0f}\n"
        "u1,t2,a1,1,yesterday\n"
        "u1,t3,a1,1,\n"
        "u1,t4,a1,1,inf\n"
        "u1,t1,a1,5,2023-13-01T00:00:00\n"  # a bad time keeps the whole row out
    )
    ds = load_plays_csv(path)
    f = ds.report.files[0]
    assert (f.rows, f.loaded, f.bad) == (5, 1, 4)
    assert f.bad_examples == [
        (3, "timestamp 'yesterday' is neither unix seconds nor ISO 8601"),
        (4, "timestamp '' is neither unix seconds nor ISO 8601"),
        (5, "timestamp 'inf' is not finite"),
        (6, "timestamp '2023-13-01T00:00:00' is neither unix seconds nor ISO 8601"),
    ]
    assert ds.items.track_ids.tolist() == ["t1"]
    assert ds.interactions.toarray().tolist() == [[1]]
    assert ds.sequences.times is not None
    assert ds.sequences.times.tolist() == [T0]


def test_bad_last_played_names_its_column(tmp_path: Path) -> None:
    path = tmp_path / "bad_alias.csv"
    path.write_text("user,track,artist,count,last_played\nu1,t1,a1,1,soon\n")
    f = load_plays_csv(path).report.files[0]
    assert f.bad_examples == [(2, "last_played 'soon' is neither unix seconds nor ISO 8601")]


def test_without_a_timestamp_column_times_stay_none():
    seqs = load_plays_csv(PLAYS).sequences
    assert seqs.times is None
    assert not seqs.has_item_times
    assert seqs.time_span() is None


def test_times_feed_recency_weighted_popularity(tmp_path: Path) -> None:
    # t_new and t_old have the same listeners and counts; t_new was played a year later
    path = tmp_path / "signals.csv"
    path.write_text(
        "user,track,artist,count,timestamp\n"
        f"u1,t_new,a1,2,{T0 + 365 * DAY:.0f}\n"
        f"u1,t_old,a2,2,{T0:.0f}\n"
        f"u2,t_new,a1,1,{T0 + 360 * DAY:.0f}\n"
        f"u2,t_old,a2,1,{T0 + 5 * DAY:.0f}\n"
    )
    data = load_plays_csv(path)
    config = SignalConfig()
    signals = compute_signals(data, config=config)
    assert signals.as_of == T0 + 365 * DAY
    assert signals.time_span == (T0, T0 + 365 * DAY)
    pop = signals.entities["tracks"].popularity
    ids = data.items.track_ids.tolist()
    new, old = ids.index("t_new"), ids.index("t_old")
    assert pop["popularity"][new] == pop["popularity"][old]
    for h in config.half_lives_days:
        recent = pop[recent_name(h)]
        assert recent[new] > recent[old] > 0
    assert "recent_7d" in pop
    # the newest play (age 0) weighs 1; five days older at a 7-day half-life, 2 ** (-5 / 7)
    assert pop["recent_7d"][new] == pytest.approx(1 + 2 ** (-5 / 7), rel=1e-6)
    # artists follow their tracks
    artists = signals.entities["artists"].popularity["recent_28d"]
    assert artists[data.items.track_artist[new]] > artists[data.items.track_artist[old]]
    # unordered: no transitions
    assert "trans" not in signals.entities["tracks"].tables
