"""Response bodies: the OpenAPI contract of /v1."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator


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


class SimilarTrack(ScoredTrack):
    sources: list[str] | None = Field(
        None,
        description="with `explain=true`: the candidate sources (models, signals) whose own "
        "list for the track holds this one, i.e. which sources put it there",
    )


class SimilarTracks(BaseModel):
    track: Track
    model: str
    items: list[SimilarTrack]


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


class StationCreate(BaseModel):
    """Seeds: tracks, artists (each stands for its most listened tracks), or several of both;
    at least one."""

    model_config = {
        "extra": "forbid",
        # what `_some_seed` checks, in the schema: a station needs a seed track or artist
        "json_schema_extra": {"anyOf": [
            {"required": ["tracks"], "properties": {"tracks": {"minItems": 1}}},
            {"required": ["artists"], "properties": {"artists": {"minItems": 1}}},
        ]},
    }  # fmt: skip

    user_id: str = Field(min_length=1, max_length=256)
    tracks: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default=[], max_length=20
    )
    artists: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default=[], max_length=20
    )
    seed: int | None = Field(
        None,
        ge=0,
        lt=2**31,
        description="replay: the same seed, seeds and events give the same station",
    )

    @model_validator(mode="after")
    def _some_seed(self) -> StationCreate:
        if not self.tracks and not self.artists:
            raise ValueError("give at least one seed: tracks or artists")
        return self


class Station(BaseModel):
    id: str
    user_id: str
    variant: str = Field(description="the experiment variant of the user")
    bundle_version: str = Field(description="the bundle version the station is pinned to")
    seed: int
    seeds: list[str] = Field(description="seed track ids")
    played: int
    queued: int
    liked: list[str]
    thumbed_down: list[str]
    dropped_artists: list[str]
    events: dict[str, int] = Field(description="feedback events applied, per type")
    revision: int


class StationTracks(BaseModel):
    station_id: str
    items: list[Track] = Field(description="the next tracks, in order; the station has advanced")


class StationQueue(BaseModel):
    station: Station
    upcoming: list[Track] = Field(
        description="the next tracks as `/tracks` would serve them now (not advanced)"
    )
    played: list[Track] = Field(description="the last tracks served, the most recent first")


class Feedback(BaseModel):
    model_config = {"extra": "forbid"}

    event_id: str = Field(
        min_length=1,
        max_length=128,
        description="the client's id of this event: a retried call changes nothing",
    )
    track_id: str = Field(min_length=1, max_length=256)
    type: Literal["thumbs_up", "thumbs_down", "skip", "completed"]


class FeedbackResult(BaseModel):
    applied: bool = Field(description="false when this event id was applied before")
    station: Station


class Problem(BaseModel):
    detail: str


class Unavailable(BaseModel):
    detail: str = Field(description="what is down; retry after the Retry-After header's seconds")


class OpsIndex(BaseModel):
    model: str
    entity: str
    dims: int
    n_items: int
    n_trees: int
    search_k: int
    recall_at_10: float | None = Field(description="measured at build against brute force")
    recall_target: float | None
    recall_target_met: bool | None
    ms_per_query: float | None


class OpsTime(BaseModel):
    first_play: str
    last_play: str
    as_of: str


class OpsBundle(BaseModel):
    version: str
    format_version: int
    created_at: str | None
    age_seconds: float | None
    source: str | None = Field(description="the data set it was built from")
    entities: dict[str, int]
    models: list[str]
    indexes: list[OpsIndex]
    time: OpsTime | None = Field(description="the data's time span; null without play times")
    variants: list[str]


class OpsStore(BaseModel):
    url: str
    state: Literal["ok", "unavailable"]
    detail: str
    since: str = Field(description="when the state last changed")


class OpsWorkers(BaseModel):
    configured: int = Field(description="SEGUE_WORKERS")
    serving: dict[str, int] = Field(description="live workers per bundle version they serve")
    answering_pid: int = Field(description="the worker that answered")


class OpsStatus(BaseModel):
    bundle: OpsBundle | None = Field(description="null while this worker has no bundle")
    bundle_error: str | None
    store: OpsStore
    workers: OpsWorkers
