import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from indexes.datasets.plays_at import load_plays_at, normalise, track_key
from indexes.datasets.registry import load_dataset

RNS = Path(__file__).parents[3].parent / "shared" / "datasets" / "radio-nowy-swiat" / "plays.csv.gz"


def utc(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def ids(ds, seq) -> list[str]:
    return [ds.items.track_ids[i] for i in seq]


# --- track_key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "artist, title",
    [
        ("Mark Ronson", "Uptown Funk"),
        ("  MARK   RONSON ", "uptown\tfunk"),
        ("Mark Ronson", "Uptown Funk (feat. Bruno Mars)"),
        ("Mark Ronson", "Uptown Funk (Featuring Bruno Mars)"),
        ("Mark Ronson", "Uptown Funk [ft. Bruno Mars]"),
        ("Mark Ronson", "Uptown Funk (ft Bruno Mars)"),
        ("Mark Ronson", "Uptown Funk (feat.Bruno Mars)"),
        ("Mark Ronson", "Uptown Funk (with Bruno Mars)"),
        ("Mark Ronson", "Uptown Funk feat. Bruno Mars"),
        ("Mark Ronson", "Uptown Funk feat Bruno Mars"),
        ("Mark Ronson", "Uptown Funk ft. Bruno Mars"),
        ("Mark Ronson", "Uptown Funk featuring Bruno Mars"),
        ("Mark Ronson feat. Bruno Mars", "Uptown Funk"),
        ("Mark Ronson Feat Bruno Mars", "Uptown Funk"),
        ("Mark Ronson FT. Bruno Mars", "Uptown Funk"),
        ("Mark Ronson, featuring Bruno Mars", "Uptown Funk"),
        ("Mark Ronson (feat. Bruno Mars)", "Uptown Funk (feat. Bruno Mars)"),
        ("Ｍａｒｋ\u00a0Ronson", "Uptown Funk"),  # NFKC: full-width letters, no-break space
    ],
)
def test_track_key_merges_spellings_and_featured_artists(artist, title):
    assert track_key(artist, title) == ("mark ronson - uptown funk", "mark ronson")


def test_track_key_keeps_what_is_not_a_featured_remark():
    assert track_key("Little Feat", "Dixie Chicken") == (
        "little feat - dixie chicken",
        "little feat",
    )
    assert track_key("Kings X", "6000 Ft.") == ("kings x - 6000 ft.", "kings x")
    assert track_key("Daft Punk", "Lose Yourself to Dance") == (
        "daft punk - lose yourself to dance",
        "daft punk",
    )
    assert track_key("U2", "With or Without You")[0] == "u2 - with or without you"
    # other brackets stay; every featured remark goes, wherever it is
    assert track_key("A", "Disco Cone (Take It High) [ft. WENZL] (feat. Wenzl)")[0] == (
        "a - disco cone (take it high)"
    )
    assert track_key("A", "Tokyo2020 (feat. Taco Hemingway) (Live)")[0] == "a - tokyo2020 (live)"
    assert normalise("Straße") == "strasse"  # casefold, not lower


def test_track_key_rejects_parts_that_normalise_to_nothing():
    with pytest.raises(ValueError, match="title"):
        track_key("A", "(feat. B)")
    with pytest.raises(ValueError, match="artist"):
        track_key("   ", "T")


# --- rows, bad rows, duplicates ---------------------------------------------------------------

BAD = (
    "played_at,artist,title\n"
    "2024-05-01 12:00:00,Blur,Tender\n"  # 2
    "2024-05-01 12:04:00,,Song 2\n"  # 3: empty artist
    "2024-05-01 12:08:00,Blur,\n"  # 4: empty title
    "2024-05-01 12:12:00,Blur,(feat. Nobody)\n"  # 5: empty once normalised
    "yesterday,Blur,Tender\n"  # 6
    "nan,Blur,Tender\n"  # 7
    "2024-05-01 12:20:00,Blur\n"  # 8: two fields
    '2024-05-01 12:24:00,"Blur,Tender\n'  # 9: malformed quoting
    "\n"  # 10: blank
    "2024-05-01 12:00:00,Blur,Tender\n"  # 11: exact repeat
    "2024-05-01 12:00:00,BLUR , tender\n"  # 12: the same play spelled differently
    "1714565100,Blur,Beetlebum\n"  # 13: unix seconds, 12:05
)


def test_bad_rows_are_counted_with_line_numbers_and_reasons(tmp_path):
    path = write(tmp_path, BAD)
    ds = load_plays_at(path)
    f = ds.report.files[0]
    assert f.path == str(path)
    assert (f.rows, f.loaded, f.bad, f.duplicates, f.blank) == (11, 4, 7, 2, 1)
    assert f.rows == f.loaded + f.bad
    reasons = dict(f.bad_examples)
    assert list(reasons) == [3, 4, 5, 6, 7, 8, 9]
    assert reasons[3] == "empty artist"
    assert reasons[4] == "empty title"
    assert reasons[5] == "title '(feat. Nobody)' is empty once normalised"
    assert reasons[6] == "played_at 'yesterday' is neither unix seconds nor ISO 8601"
    assert reasons[7] == "played_at 'nan' is not finite"
    assert reasons[8] == "expected 3 fields, got 2"
    assert reasons[9].startswith("malformed CSV")
    # the repeats are merged: two plays in all
    assert ds.items.track_ids.tolist() == ["blur - tender", "blur - beetlebum"]
    assert [ids(ds, s) for s in ds.sequences] == [["blur - tender", "blur - beetlebum"]]
    assert ds.sequences.times is not None
    assert ds.sequences.times.tolist() == [utc(2024, 5, 1, 12, 0), utc(2024, 5, 1, 12, 5)]


def test_a_repeat_at_another_time_is_another_play(tmp_path):
    path = write(
        tmp_path,
        "timestamp,artist,title\n100,A,T\n100,A,T\n160,A,T\n100,A,T (feat. B)\n100,A,U\n",
    )
    ds = load_plays_at(path)
    f = ds.report.files[0]
    assert (f.rows, f.loaded, f.bad, f.duplicates) == (5, 5, 0, 2)
    assert [ids(ds, s) for s in ds.sequences] == [["a - t", "a - u", "a - t"]]
    assert ds.interactions.toarray().tolist() == [[2, 1]]


def test_feat_forms_make_one_track_named_after_the_first_spelling(tmp_path):
    path = write(
        tmp_path,
        "played_at,artist,title\n"
        "2024-05-01 10:00:00,Mark Ronson,Uptown Funk (feat. Bruno Mars)\n"
        "2024-05-01 10:05:00,MARK RONSON feat. Bruno Mars,Uptown Funk\n"
        "2024-05-01 10:10:00,Mark  Ronson,Uptown Funk [ft Bruno Mars]\n"
        "2024-05-01 10:15:00,Mark Ronson ft. Amy Winehouse,Valerie\n"
        "2024-05-01 10:20:00,Amy Winehouse,Valerie\n",
    )
    ds = load_plays_at(path)
    items = ds.items
    assert items.track_ids.tolist() == [
        "mark ronson - uptown funk",
        "mark ronson - valerie",
        "amy winehouse - valerie",
    ]
    assert items.track_names.tolist() == ["Uptown Funk (feat. Bruno Mars)", "Valerie", "Valerie"]
    assert items.artist_ids.tolist() == ["mark ronson", "amy winehouse"]
    assert items.artist_names.tolist() == ["Mark Ronson", "Amy Winehouse"]
    assert items.track_artist.tolist() == [0, 0, 1]
    assert ds.track_plays().tolist() == [3, 1, 1]
    assert len(items.tag_names) == 0


def test_a_track_id_met_under_another_artist_spelling_is_the_same_track(tmp_path):
    # "JLT" + "A - B" and "JLT - A" + "B" give the same id: one track, under the first artist
    path = write(tmp_path, "timestamp,artist,title\n100,JLT,Trio - Song\n200,JLT - Trio,Song\n")
    ds = load_plays_at(path)
    assert ds.report.bad == 0
    assert ds.items.track_ids.tolist() == ["jlt - trio - song"]
    assert ds.items.artist_ids.tolist() == ["jlt"]
    assert ds.sequences.items.tolist() == [0, 0]


# --- sessions and users -----------------------------------------------------------------------

STATION = (
    "played_at,artist,title\n"
    "2024-05-01 10:00:00,A,One\n"
    "2024-05-01 11:00:00,A,Two\n"  # a gap of exactly 60 minutes: the same session
    "2024-05-01 12:00:01,A,Three\n"  # 60 min 1 s: a new session
    "2024-05-01 12:30:00,B,Four\n"
    "2024-05-01 12:10:00,B,Five\n"  # out of file order: sorted by time
    "2024-05-01 12:10:00,A,One\n"  # a tie: file order
    "2024-05-02 08:00:00+02:00,A,Two\n"  # 06:00 UTC: a new session
)


def test_sessions_are_cut_where_the_gap_exceeds_the_limit(tmp_path):
    path = write(tmp_path, STATION, name="airplay.csv")
    ds = load_plays_at(path)
    assert ds.name == f"plays-at:{path}"
    seqs = ds.sequences
    assert seqs.ordered is True
    assert [[ds.items.track_names[i] for i in s] for s in seqs] == [
        ["One", "Two"],
        ["Three", "Five", "One", "Four"],
        ["Two"],
    ]
    assert seqs.indptr.tolist() == [0, 2, 6, 7]
    assert seqs.items.dtype == np.int32
    assert seqs.timestamp.tolist() == [
        utc(2024, 5, 1, 10, 0),
        utc(2024, 5, 1, 12, 0, 1),
        utc(2024, 5, 2, 6, 0),
    ]
    assert seqs.times is not None
    assert seqs.times.dtype == np.float64
    assert seqs.times.tolist() == [
        utc(2024, 5, 1, 10, 0),
        utc(2024, 5, 1, 11, 0),
        utc(2024, 5, 1, 12, 0, 1),
        utc(2024, 5, 1, 12, 10),
        utc(2024, 5, 1, 12, 10),
        utc(2024, 5, 1, 12, 30),
        utc(2024, 5, 2, 6, 0),
    ]
    assert seqs.has_item_times
    assert seqs.time_span() == (utc(2024, 5, 1, 10, 0), utc(2024, 5, 2, 6, 0))


def test_without_a_user_column_each_session_is_its_own_user(tmp_path):
    ds = load_plays_at(write(tmp_path, STATION, name="airplay.csv"))
    assert ds.user_ids.tolist() == [
        "airplay@2024-05-01T10:00:00",
        "airplay@2024-05-01T12:00:01",
        "airplay@2024-05-02T06:00:00",
    ]
    assert ds.sequences.user.tolist() == [0, 1, 2]
    assert ds.interactions_from_sequences is True
    assert ds.interactions.dtype == np.float32
    # tracks: One, Two, Three, Four, Five
    assert ds.interactions.toarray().tolist() == [
        [1, 1, 0, 0, 0],
        [1, 0, 1, 1, 1],
        [0, 1, 0, 0, 0],
    ]


def test_the_session_gap_is_a_parameter(tmp_path):
    path = write(tmp_path, STATION)
    assert [len(s) for s in load_plays_at(path, session_gap_minutes=30).sequences] == [1, 1, 4, 1]
    assert [len(s) for s in load_plays_at(path, session_gap_minutes=24 * 60).sequences] == [7]
    with pytest.raises(ValueError, match="session_gap_minutes"):
        load_plays_at(path, session_gap_minutes=-1)
    with pytest.raises(ValueError, match="session_gap_minutes"):
        load_plays_at(path, session_gap_minutes=float("nan"))


@pytest.mark.parametrize("column", ["user", "Listener"])
def test_with_a_user_column_sessions_are_cut_per_user(tmp_path, column):
    path = write(
        tmp_path,
        f"{column},timestamp,artist,title\n"
        "bob,1000,A,One\n"
        "alice,1100,A,Two\n"
        "bob,1200,A,Three\n"  # alice played in between: bob's gap is still 200 s
        "alice,9000,A,One\n"  # 7900 s after alice's last play: her second session
        "bob,9100,A,Two\n"
        ",9200,A,Two\n"
        "  ,9300,A,Two\n",
    )
    ds = load_plays_at(path)
    f = ds.report.files[0]
    assert (f.rows, f.loaded, f.bad) == (7, 5, 2)
    name = column.lower()
    assert f.bad_examples == [(7, f"empty {name}"), (8, f"{name} '  ' is only whitespace")]
    assert ds.user_ids.tolist() == ["bob", "alice"]
    seqs = ds.sequences
    assert seqs.user.tolist() == [0, 0, 1, 1]
    assert [[ds.items.track_names[i] for i in s] for s in seqs] == [
        ["One", "Three"],
        ["Two"],
        ["Two"],
        ["One"],
    ]
    assert seqs.timestamp.tolist() == [1000.0, 9100.0, 1100.0, 9000.0]
    assert seqs.times is not None
    assert seqs.times.tolist() == [1000.0, 1200.0, 9100.0, 1100.0, 9000.0]
    assert ds.interactions.toarray().tolist() == [[1, 1, 1], [1, 1, 0]]


def test_user_ids_are_read_as_written(tmp_path):
    path = write(tmp_path, "user,timestamp,artist,title\nbob,1,A,T\n bob,2,A,T\n")
    ds = load_plays_at(path)
    assert ds.user_ids.tolist() == ["bob", " bob"]


def test_times_stay_parallel_to_items_through_selection(tmp_path):
    ds = load_plays_at(write(tmp_path, STATION))
    sub = ds.select_sequences(np.array([False, True, False]))
    assert sub.sequences.times is not None
    assert len(sub.sequences.times) == sub.sequences.n_items == 4
    assert np.all(np.diff(sub.sequences.times) >= 0)
    assert sub.interactions.sum() == 4


# --- files ------------------------------------------------------------------------------------


def test_gzip_input_reads_like_the_plain_file(tmp_path):
    plain = write(tmp_path, BAD)
    packed = tmp_path / "log.csv.gz"
    packed.write_bytes(gzip.compress(b"\xef\xbb\xbf" + BAD.encode("utf-8")))  # with a BOM
    a = load_plays_at(plain)
    b = load_plays_at(packed)
    assert b.name == f"plays-at:{packed}"
    fa, fb = a.report.files[0], b.report.files[0]
    assert fb.path == str(packed)
    assert (fb.rows, fb.loaded, fb.bad, fb.duplicates, fb.blank) == (
        fa.rows,
        fa.loaded,
        fa.bad,
        fa.duplicates,
        fa.blank,
    )
    assert fb.bad_examples == fa.bad_examples
    assert b.items.track_ids.tolist() == a.items.track_ids.tolist()
    assert b.sequences.items.tolist() == a.sequences.items.tolist()
    assert b.user_ids.tolist() == ["log@2024-05-01T12:00:00"]  # named without .csv.gz


def test_a_corrupt_gzip_file_is_a_usage_error(tmp_path):
    path = tmp_path / "log.csv.gz"
    path.write_bytes(b"played_at,artist,title\n")
    with pytest.raises(ValueError, match=r"log\.csv\.gz.*gzip"):
        load_plays_at(path)


def test_missing_time_column_is_a_usage_error(tmp_path):
    path = write(tmp_path, "artist,title\nA,T\n")
    with pytest.raises(ValueError, match=r"log\.csv.*timestamp or played_at"):
        load_plays_at(path)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"nothere\.csv\.gz"):
        load_plays_at(tmp_path / "nothere.csv.gz")


def test_header_only_file_gives_an_empty_dataset(tmp_path):
    ds = load_plays_at(write(tmp_path, "Played_At,Artist,Title\n"))
    assert ds.items.n_tracks == 0
    assert ds.n_users == 0
    assert len(ds.sequences) == 0
    assert ds.sequences.indptr.tolist() == [0]
    assert ds.interactions.shape == (0, 0)
    assert ds.report.files[0].rows == 0


def test_registry_passes_the_session_gap(tmp_path):
    path = write(tmp_path, STATION)
    assert len(load_dataset(f"plays-at:{path}").sequences) == 3
    assert len(load_dataset(f"plays-at:{path}", session_gap_minutes=30).sequences) == 4
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(f"plays-at:{tmp_path / 'none.csv'}")


@pytest.mark.skipif(
    not RNS.is_file(),
    reason=f"Radio Nowy Świat log not found at {RNS} (../shared beside the repo)",
)
@pytest.mark.slow
def test_real_radio_nowy_swiat_log():
    ds = load_plays_at(RNS)
    f = ds.report.files[0]
    assert f.rows == 411568
    assert f.rows == f.loaded + f.bad
    # PROVENANCE.md: 293 rows with an empty artist or title; ~3,800 exact repeats
    assert f.bad == 293
    assert all(reason in ("empty artist", "empty title") for _, reason in f.bad_examples)
    assert 3500 < f.duplicates < 4100
    seqs = ds.sequences
    assert seqs.n_items == f.loaded - f.duplicates
    assert seqs.has_item_times
    assert seqs.times is not None
    lengths = np.diff(seqs.indptr)
    assert (lengths > 0).all()
    starts = seqs.indptr[:-1]
    assert np.array_equal(seqs.timestamp, seqs.times[starts])
    # sorted within a session, no gap over an hour inside one, more than an hour between them
    inner = np.diff(seqs.times)
    inner[starts[1:] - 1] = 0
    assert inner.min() >= 0
    assert inner.max() <= 3600
    assert (seqs.timestamp[1:] - seqs.times[seqs.indptr[1:-1] - 1] > 3600).all()
    assert ds.n_users == len(seqs)
    assert 130_000 < ds.items.n_tracks < 139_677
    assert 45_000 < ds.items.n_artists < 50_048
