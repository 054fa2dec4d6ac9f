import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexes.datasets.hetrec import load_hetrec

MINI = Path(__file__).parents[2] / "fixtures" / "datasets" / "hetrec-mini"
REAL = Path(__file__).parents[3].parent / "shared" / "datasets" / "hetrec2011-lastfm-2k"


def reports(dataset):
    return {Path(f.path).name: f for f in dataset.report.files}


def test_mini_report_counts_and_line_numbers():
    ds = load_hetrec(MINI)
    files = reports(ds)
    assert list(files) == ["artists.dat", "tags.dat", "user_artists.dat", "user_taggedartists.dat"]

    artists = files["artists.dat"]
    assert (artists.rows, artists.loaded, artists.bad, artists.duplicates, artists.blank) == (
        7,
        5,
        2,
        1,
        1,
    )
    assert artists.bad_examples == [(7, "empty id"), (9, "expected 4 fields, got 3")]

    tags = files["tags.dat"]
    assert (tags.rows, tags.loaded, tags.bad, tags.duplicates, tags.blank) == (7, 6, 1, 1, 1)
    assert tags.bad_examples == [(7, "empty tagValue")]

    plays = files["user_artists.dat"]
    assert (plays.rows, plays.loaded, plays.bad, plays.duplicates, plays.blank) == (12, 7, 5, 1, 1)
    assert plays.bad_examples == [
        (9, "weight 'abc' is not a number"),
        (10, "weight '-4' is negative"),
        (11, "weight 'nan' is not finite"),
        (12, "empty userID"),
        (14, "expected 3 fields, got 4"),
    ]

    tagged = files["user_taggedartists.dat"]
    assert (tagged.rows, tagged.loaded, tagged.bad, tagged.duplicates, tagged.blank) == (
        10,
        7,
        3,
        2,
        1,
    )
    assert tagged.bad_examples == [
        (9, "artist '77' is in neither artists.dat nor user_artists.dat"),
        (10, "tagID '42' is not in tags.dat"),
        (11, "expected 6 fields, got 5"),
    ]
    assert ds.report.bad == 11
    for f in ds.report.files:
        assert f.rows == f.loaded + f.bad


def test_mini_catalogue_one_pseudo_track_per_artist():
    ds = load_hetrec(MINI)
    items = ds.items
    assert ds.name == f"hetrec:{MINI}"
    assert ds.tracks_are_artists is True
    # artists.dat in file order (BOM stripped, duplicate id 2 keeps its first name), then the
    # artist 99 that only user_artists.dat knows, named by its id
    assert items.artist_ids.tolist() == ["1", "2", "3", "4", "99"]
    assert items.artist_names.tolist() == [
        "Metallica",
        '"Weird Al" Yankovic',
        "Sigur Rós",
        "Cold Start Band",
        "99",
    ]
    assert items.track_ids.tolist() == items.artist_ids.tolist()
    assert items.track_names.tolist() == items.artist_names.tolist()
    assert items.track_artist.tolist() == [0, 1, 2, 3, 4]
    assert items.track_artist.dtype == np.int32


def test_mini_tags_latin1_and_user_counts():
    ds = load_hetrec(MINI)
    items = ds.items
    # tags.dat is latin-1; tag ids 1 and 4 share the value "metal" and so one column
    assert items.tag_names.tolist() == ["metal", "rock", "tropicália", "unused tag"]
    assert items.track_tags.dtype == np.float32
    # weight = distinct users who applied the tag to the artist; user 10's repeats (same tag id
    # on another day, and tag id 4 = "metal") count once; user 20 never played anything
    assert items.track_tags.toarray().tolist() == [
        [2, 0, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 1, 0],
        [0, 1, 0, 0],  # the cold-start artist 4: tags, no plays
        [0, 1, 0, 0],
    ]


def test_mini_interactions_and_sequences():
    ds = load_hetrec(MINI)
    assert ds.user_ids.tolist() == ["10", "11", "12", "13"]
    assert ds.interactions.dtype == np.float32
    assert ds.interactions.shape == (4, 5)
    # user 10 played artist 1 twice (100 + 25); user 13's only row has weight 0
    assert ds.interactions.toarray().tolist() == [
        [125, 50, 0, 0, 0],
        [7, 0, 20, 0, 0],
        [0, 0, 0, 0, 5],
        [0, 0, 0, 0, 0],
    ]
    assert ds.interactions.nnz == 5
    assert ds.interactions_from_sequences is False
    seqs = ds.sequences
    assert seqs.ordered is False
    assert [s.tolist() for s in seqs] == [[0, 1], [2, 0], [4], []]
    assert seqs.user.tolist() == [0, 1, 2, 3]
    assert all(math.isnan(t) for t in seqs.timestamp)
    assert ds.track_listeners().tolist() == [2, 1, 1, 0, 1]


def test_missing_file_names_the_file(tmp_path):
    for name in ["artists.dat", "tags.dat", "user_artists.dat"]:
        shutil.copy(MINI / name, tmp_path / name)
    with pytest.raises(ValueError, match=r"user_taggedartists\.dat"):
        load_hetrec(tmp_path)


def test_missing_column_names_file_and_column(tmp_path):
    for name in ["artists.dat", "tags.dat", "user_taggedartists.dat"]:
        shutil.copy(MINI / name, tmp_path / name)
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tplays\n2\t1\t3\n")
    with pytest.raises(ValueError, match=r"user_artists\.dat.*weight"):
        load_hetrec(tmp_path)


def test_header_only_files_give_an_empty_dataset(tmp_path):
    (tmp_path / "artists.dat").write_text("id\tname\turl\tpictureURL\n")
    (tmp_path / "tags.dat").write_text("tagID\ttagValue\r\n")
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tweight\r\n\r\n")
    (tmp_path / "user_taggedartists.dat").write_text("userID\tartistID\ttagID\tday\tmonth\tyear\n")
    ds = load_hetrec(tmp_path)
    assert ds.items.n_tracks == 0
    assert ds.n_users == 0
    assert ds.interactions.shape == (0, 0)
    assert len(ds.sequences) == 0
    assert ds.report.bad == 0
    assert reports(ds)["user_artists.dat"].blank == 1


@pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real HetRec copy not found at {REAL} (../shared beside the repo)"
)
def test_real_hetrec_copy():
    ds = load_hetrec(REAL)
    assert ds.n_users == 1892
    assert ds.items.n_artists == 17632
    assert ds.items.n_tracks == 17632
    assert ds.interactions.nnz == 92834
    assert len(ds.items.tag_names) == 11946
    files = reports(ds)
    assert files["user_artists.dat"].rows == 92834
    assert files["user_artists.dat"].loaded == 92834
    assert files["artists.dat"].loaded == 17632
    assert files["tags.dat"].bad == 0
    tagged = files["user_taggedartists.dat"]
    assert tagged.rows == 186478
    # tag assignments of the 390 artists that are in neither artists.dat nor user_artists.dat
    assert tagged.bad == 1538
    assert tagged.loaded == 186478 - 1538
    assert all(reason.startswith("artist ") for _, reason in tagged.bad_examples)
    assert "tropicália" in set(ds.items.tag_names.tolist())
    assert ds.items.artist_names[0] == "MALICE MIZER"
    assert len(ds.sequences) == 1892
    assert ds.sequences.n_items == 92834
