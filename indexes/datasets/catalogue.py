"""The track catalogue a text loader builds from its rows: tracks, artists and tags in order of
first appearance on loaded rows, with the first non-empty name of each (the id where there is
none) and one tag entry per distinct (track, tag).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from indexes.datasets.shape import Interner, Items, make_items
from indexes.datasets.tables import BadRow, Fields, optional, split_tags


@dataclass(frozen=True)
class NameColumns:
    """The field indexes of the optional ``track_name``, ``artist_name`` and ``tags`` columns
    (None where the file lacks one)."""

    track_name: int | None = None
    artist_name: int | None = None
    tags: int | None = None

    @classmethod
    def of(cls, columns: dict[str, int]) -> NameColumns:
        """The columns of a header (lower-cased column name -> field index)."""
        return cls(
            track_name=columns.get("track_name"),
            artist_name=columns.get("artist_name"),
            tags=columns.get("tags"),
        )


class Catalogue:
    """Tracks, artists and tags in order of first appearance on loaded rows."""

    def __init__(self) -> None:
        self.tracks = Interner()
        self.artists = Interner()
        self.tags = Interner()
        self.track_artist: list[int] = []
        self.track_names: list[str] = []
        self.artist_names: list[str] = []
        self.track_tags: set[tuple[int, int]] = set()

    def check(self, track: str, artist: str) -> None:
        """Raises `BadRow` when `track` is already listed under another artist."""
        row = self.tracks.index.get(track)
        if row is not None:
            first = self.artists.ids[self.track_artist[row]]
            if first != artist:
                raise BadRow(
                    f"track {track!r} listed under artist {artist!r}, first seen under {first!r}"
                )

    def add(
        self, *, track: str, artist: str, track_name: str, artist_name: str, tags: Sequence[str]
    ) -> int:
        """Adds (or completes) a track and its artist; returns the track row. Call `check` first."""
        a = self.artists.get(artist)
        if a == len(self.artist_names):
            self.artist_names.append(artist_name)
        elif artist_name and not self.artist_names[a]:
            self.artist_names[a] = artist_name
        t = self.tracks.get(track)
        if t == len(self.track_names):
            self.track_names.append(track_name)
            self.track_artist.append(a)
        elif track_name and not self.track_names[t]:
            self.track_names[t] = track_name
        for tag in tags:
            self.track_tags.add((t, self.tags.get(tag)))
        return t

    def add_row(self, fields: Fields, *, track: str, artist: str, names: NameColumns) -> int:
        """`add` with the names and tags of a row's optional columns; returns the track row."""
        return self.add(
            track=track,
            artist=artist,
            track_name=optional(fields, names.track_name),
            artist_name=optional(fields, names.artist_name),
            tags=split_tags(optional(fields, names.tags)),
        )

    def items(self) -> Items:
        pairs = sorted(self.track_tags)
        return make_items(
            track_ids=self.tracks.ids,
            track_names=[n or i for n, i in zip(self.track_names, self.tracks.ids, strict=True)],
            track_artist=self.track_artist,
            artist_ids=self.artists.ids,
            artist_names=[n or i for n, i in zip(self.artist_names, self.artists.ids, strict=True)],
            tag_names=self.tags.ids,
            tag_rows=[t for t, _ in pairs],
            tag_cols=[g for _, g in pairs],
            tag_weights=[1.0] * len(pairs),
        )
