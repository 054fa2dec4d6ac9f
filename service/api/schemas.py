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
    items: list[ScoredArtist]


class Recommendations(BaseModel):
    user: str
    items: list[RecommendedTrack]


class Problem(BaseModel):
    detail: str
