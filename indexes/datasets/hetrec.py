"""Loader for the HetRec 2011 Last.fm 2K data set (artists only, no tracks, no order).

Files (tab-separated, no quoting, a header line; column names matched case-insensitively):

- ``artists.dat``: id, name, url, pictureURL
- ``tags.dat``: tagID, tagValue (latin-1 in the published copy; lines that are not valid UTF-8 are
  decoded as latin-1)
- ``user_artists.dat``: userID, artistID, weight (the user's play count of the artist)
- ``user_taggedartists.dat``: userID, artistID, tagID, day, month, year (only the ids are read)

All four files are required. The source only knows artists, so the data set gets one pseudo-track
per artist (``tracks_are_artists=True``): track ids and names are the artist ids and names, and
``track_artist`` is ``arange``. Interactions are the users x artists weights; sequences are one
unordered sequence per user, derived from them.

Decisions (every row is accounted for: ``rows == loaded + bad`` in each file's report):

- Artists: every artist of artists.dat, in file order (those nobody played stay: cold-start items
  with tags), then the artists that user_artists.dat plays but artists.dat lacks, in order of first
  appearance, named by their id. Such a play row is well-formed and is loaded, not reported bad:
  the plays are real signal and the id identifies the artist. A repeated artist id in artists.dat
  is a duplicate (the first name is kept); an empty name falls back to the id.
- Users: those of user_artists.dat, in order of first appearance. A repeated (user, artist) is a
  duplicate whose weight is summed. Weights must be finite, non-negative numbers.
- Tags: one tag column per distinct tagValue of tags.dat (in file order, unused tags included), so
  ``tag_names`` has no repeats. A repeated tagID is a duplicate (the first value is kept); an empty
  tagValue is a bad row.
- Tag weight of (artist, tag): the number of distinct users who applied the tag to the artist. A
  repeated (user, artist, tag) assignment is a duplicate that adds nothing.
- A tag assignment for an artist in neither artists.dat nor user_artists.dat (no name, no plays:
  nothing a recommender could show or seed from; the published copy has 390 such artists) or for a
  tagID missing from tags.dat is a bad row with that reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexes.datasets.report import LoadReport
from indexes.datasets.shape import Dataset, Interner, make_items, sequences_from_interactions
from indexes.datasets.tables import (
    BadRow,
    count_matrix,
    id_column_spec,
    open_table,
    parse_count,
    read_ids,
    split_tab,
)

ARTISTS = "artists.dat"
TAGS = "tags.dat"
USER_ARTISTS = "user_artists.dat"
USER_TAGGED = "user_taggedartists.dat"

COLUMNS: dict[str, tuple[str, ...]] = {
    ARTISTS: ("id", "name"),
    TAGS: ("tagID", "tagValue"),
    USER_ARTISTS: ("userID", "artistID", "weight"),
    USER_TAGGED: ("userID", "artistID", "tagID"),
}


def load_hetrec(directory: Path) -> Dataset:
    """Loads a HetRec 2011 Last.fm 2K directory (see the module docstring for the rules)."""
    directory = Path(directory)
    missing = [name for name in COLUMNS if not (directory / name).is_file()]
    if missing:
        raise ValueError(
            f"{directory}: missing HetRec file(s) {', '.join(missing)} "
            f"(expected {', '.join(COLUMNS)})"
        )
    report = LoadReport()

    # artists.dat: the catalogue, in file order
    artists = Interner()
    artist_names: list[str] = []
    out, columns, rows = open_table(
        directory / ARTISTS, report, required=COLUMNS[ARTISTS], split=split_tab
    )
    id_columns = id_column_spec(columns, ("id",))
    i_name = columns["name"]
    for line, fields in rows:
        try:
            (artist,) = read_ids(fields, id_columns)
        except BadRow as exc:
            out.bad_row(line=line, reason=str(exc))
            continue
        out.loaded += 1
        if artist in artists:
            out.duplicates += 1
            continue
        artists.get(artist)
        artist_names.append(fields[i_name] or artist)

    # tags.dat: tag id -> tag column (one column per distinct value)
    tags = Interner()
    tag_column: dict[str, int] = {}
    out, columns, rows = open_table(
        directory / TAGS, report, required=COLUMNS[TAGS], split=split_tab
    )
    id_columns = id_column_spec(columns, COLUMNS[TAGS])
    for line, fields in rows:
        try:
            tag_id, value = read_ids(fields, id_columns)
        except BadRow as exc:
            out.bad_row(line=line, reason=str(exc))
            continue
        out.loaded += 1
        if tag_id in tag_column:
            out.duplicates += 1
            continue
        tag_column[tag_id] = tags.get(value)

    # user_artists.dat: play counts; unknown artists join the catalogue, named by their id
    users = Interner()
    plays: dict[tuple[int, int], float] = {}
    out, columns, rows = open_table(
        directory / USER_ARTISTS, report, required=COLUMNS[USER_ARTISTS], split=split_tab
    )
    id_columns = id_column_spec(columns, ("userID", "artistID"))
    i_weight = columns["weight"]
    for line, fields in rows:
        try:
            user, artist = read_ids(fields, id_columns)
            weight = parse_count(fields[i_weight], "weight")
        except BadRow as exc:
            out.bad_row(line=line, reason=str(exc))
            continue
        a = artists.get(artist)
        if a == len(artist_names):
            artist_names.append(artist)
        key = (users.get(user), a)
        if key in plays:
            plays[key] += weight
            out.duplicates += 1
        else:
            plays[key] = weight
        out.loaded += 1

    # user_taggedartists.dat: distinct (user, artist, tag) assignments
    assignments: set[tuple[str, int, int]] = set()
    out, columns, rows = open_table(
        directory / USER_TAGGED, report, required=COLUMNS[USER_TAGGED], split=split_tab
    )
    id_columns = id_column_spec(columns, COLUMNS[USER_TAGGED])
    for line, fields in rows:
        try:
            user, artist, tag_id = read_ids(fields, id_columns)
            a_row = artists.index.get(artist)
            if a_row is None:
                raise BadRow(f"artist {artist!r} is in neither {ARTISTS} nor {USER_ARTISTS}")
            tag = tag_column.get(tag_id)
            if tag is None:
                raise BadRow(f"tagID {tag_id!r} is not in {TAGS}")
        except BadRow as exc:
            out.bad_row(line=line, reason=str(exc))
            continue
        out.loaded += 1
        assignment = (user, a_row, tag)
        if assignment in assignments:
            out.duplicates += 1
            continue
        assignments.add(assignment)

    n = len(artists)
    pairs = sorted((a, tag) for _, a, tag in assignments)
    items = make_items(
        track_ids=artists.ids,
        track_names=artist_names,
        track_artist=np.arange(n, dtype=np.int32),
        artist_ids=artists.ids,
        artist_names=artist_names,
        tag_names=tags.ids,
        tag_rows=[a for a, _ in pairs],
        tag_cols=[tag for _, tag in pairs],
        tag_weights=np.ones(len(pairs), dtype=np.float32),
    )
    interactions = count_matrix(plays, shape=(len(users), n))
    return Dataset(
        name=f"hetrec:{directory}",
        items=items,
        user_ids=np.asarray(users.ids, dtype=str),
        interactions=interactions,
        sequences=sequences_from_interactions(interactions),
        interactions_from_sequences=False,
        tracks_are_artists=True,
        report=report,
    )
