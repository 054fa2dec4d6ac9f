"""Response bodies: the OpenAPI contract of /v1."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ArtistRef(BaseModel):
    id: str
    name: str


class Track(BaseModel):
    id: str
    name: str
    artist: ArtistRef
    listeners: int = Field(description="users who played it in the bundle's data")


class Artist(BaseModel):
    id: str
    name: str
    listeners: int


class ScoredTrack(Track):
    score: float


class ScoredArtist(Artist):
    score: float


class RecommendedTrack(ScoredTrack):
    reason: str = Field(description="why this track, in words a listener can read")


class TrackList(BaseModel):
    items: list[Track]


class ArtistList(BaseModel):
    items: list[Artist]


class SimilarTracks(BaseModel):
    track: Track
    model: str
    items: list[ScoredTrack]


class RelatedArtists(BaseModel):
    artist: Artist
    source: str = Field(description="`cache` (read from the store) or `computed` (from the bundle)")
    items: list[ScoredArtist]


class RadioNeighbours(BaseModel):
    track: Track
    source: str = Field(
        description="`cache` (read from the store) or `computed` (on a miss; now written back)"
    )
    items: list[ScoredTrack]


class Recommendations(BaseModel):
    user: str
    items: list[RecommendedTrack]


class Problem(BaseModel):
    detail: str


class Unavailable(BaseModel):
    detail: str = Field(description="what is down; retry after the Retry-After header's seconds")
