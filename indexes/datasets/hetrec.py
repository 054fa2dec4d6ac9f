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

from indexes.datasets.report import FileReport, LoadReport
from indexes.datasets.shape import Dataset, Interner, Items, dataset_from_counts, make_items
from indexes.datasets.tables import (
    BadRow,
    Fields,
    Rows,
    add_count,
    count_matrix,
    id_column_spec,
    is_duplicate,
    loaded_rows,
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
    artists = _read_artists(*_open(directory, ARTISTS, report))
    tag_names, tag_column = _read_tags(*_open(directory, TAGS, report))
    users, plays = _read_plays(*_open(directory, USER_ARTISTS, report), artists=artists)
    assignments = _read_assignments(
        *_open(directory, USER_TAGGED, report), artists=artists, tag_column=tag_column
    )
    items = artists.items(tag_names=tag_names, assignments=assignments)
    interactions = count_matrix(plays, shape=(len(users), items.n_tracks))
    return dataset_from_counts(
        name=f"hetrec:{directory}",
        items=items,
        user_ids=users.ids,
        interactions=interactions,
        tracks_are_artists=True,
        report=report,
    )


def _open(
    directory: Path, name: str, report: LoadReport
) -> tuple[FileReport, dict[str, int], Rows]:
    return open_table(directory / name, report, required=COLUMNS[name], split=split_tab)


class _Artists:
    """The catalogue: artist ids (rows in order) and names (the id where there is none)."""

    def __init__(self) -> None:
        self.ids = Interner()
        self.names: list[str] = []

    def items(self, *, tag_names: list[str], assignments: set[tuple[str, int, int]]) -> Items:
        """One pseudo-track per artist; the weight of (artist, tag) is the number of distinct
        users who applied the tag to the artist."""
        pairs = sorted((a, tag) for _, a, tag in assignments)
        return make_items(
            track_ids=self.ids.ids,
            track_names=self.names,
            track_artist=np.arange(len(self.ids), dtype=np.int32),
            artist_ids=self.ids.ids,
            artist_names=self.names,
            tag_names=tag_names,
            tag_rows=[a for a, _ in pairs],
            tag_cols=[tag for _, tag in pairs],
            tag_weights=np.ones(len(pairs), dtype=np.float32),
        )

    def row(self, artist: str) -> int:
        """The artist's row; an artist new to the catalogue joins it, named by its id."""
        a = self.ids.get(artist)
        if a == len(self.names):
            self.names.append(artist)
        return a


def _read_artists(out: FileReport, columns: dict[str, int], rows: Rows) -> _Artists:
    """artists.dat: the catalogue, in file order; a repeated id keeps its first name."""
    id_columns = id_column_spec(columns, ("id",))
    i_name = columns["name"]

    def parse(fields: Fields) -> tuple[str, str]:
        (artist,) = read_ids(fields, id_columns)
        return artist, fields[i_name]

    artists = _Artists()
    for artist, name in loaded_rows(rows, out=out, parse=parse):
        if not is_duplicate(artist, artists.ids, out=out):
            artists.ids.get(artist)
            artists.names.append(name or artist)
    return artists


def _read_tags(
    out: FileReport, columns: dict[str, int], rows: Rows
) -> tuple[list[str], dict[str, int]]:
    """tags.dat: the tag names (one per distinct value) and tag id -> tag column."""
    tags = Interner()
    tag_column: dict[str, int] = {}
    id_columns = id_column_spec(columns, COLUMNS[TAGS])
    for tag_id, value in loaded_rows(rows, out=out, parse=lambda f: read_ids(f, id_columns)):
        if not is_duplicate(tag_id, tag_column, out=out):
            tag_column[tag_id] = tags.get(value)
    return tags.ids, tag_column


def _read_plays(
    out: FileReport, columns: dict[str, int], rows: Rows, *, artists: _Artists
) -> tuple[Interner, dict[tuple[int, int], float]]:
    """user_artists.dat: the users and their (user, artist) play counts; unknown artists join
    the catalogue."""
    id_columns = id_column_spec(columns, ("userID", "artistID"))
    i_weight = columns["weight"]

    def parse(fields: Fields) -> tuple[str, str, float]:
        user, artist = read_ids(fields, id_columns)
        return user, artist, parse_count(fields[i_weight], "weight")

    users = Interner()
    plays: dict[tuple[int, int], float] = {}
    for user, artist, weight in loaded_rows(rows, out=out, parse=parse):
        a = artists.row(artist)
        add_count(plays, (users.get(user), a), weight, out=out)
    return users, plays


def _read_assignments(
    out: FileReport,
    columns: dict[str, int],
    rows: Rows,
    *,
    artists: _Artists,
    tag_column: dict[str, int],
) -> set[tuple[str, int, int]]:
    """user_taggedartists.dat: the distinct (user, artist row, tag column) assignments."""
    id_columns = id_column_spec(columns, COLUMNS[USER_TAGGED])

    def parse(fields: Fields) -> tuple[str, int, int]:
        user, artist, tag_id = read_ids(fields, id_columns)
        a_row = artists.ids.index.get(artist)
        if a_row is None:
            raise BadRow(f"artist {artist!r} is in neither {ARTISTS} nor {USER_ARTISTS}")
        tag = tag_column.get(tag_id)
        if tag is None:
            raise BadRow(f"tagID {tag_id!r} is not in {TAGS}")
        return user, a_row, tag

    assignments: set[tuple[str, int, int]] = set()
    for assignment in loaded_rows(rows, out=out, parse=parse):
        if not is_duplicate(assignment, assignments, out=out):
            assignments.add(assignment)
    return assignments
