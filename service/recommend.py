"""Recommendation logic over a loaded bundle: plain Python, no web framework, tested without HTTP.

Functions take catalogue rows and return `Item`s; the routers translate ids and shape JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexes.bundle import Bundle, Entities
from indexes.ensemble import ENSEMBLE, capped_positions
from service.bundle_holder import LoadedBundle
from service.errors import BadParameter, ModelUnavailable

USER_MODEL = "als"  # the model whose user vectors drive personal recommendations


@dataclass(frozen=True)
class Item:
    row: int
    score: float
    reason: str | None = None


def sources(loaded: LoadedBundle, *, entity: str) -> list[str]:
    return [*loaded.bundle.models(entity), ENSEMBLE]


def cap_per_artist(
    rows: NDArray[np.int32],
    scores: NDArray[np.float32],
    *,
    artist: NDArray[np.int32],
    cap: int,
    limit: int,
) -> list[Item]:
    """Keeps rows in order, at most `cap` per artist, until `limit` are kept."""
    rows = np.asarray(rows)
    if len(rows) == 0:
        return []
    if limit * 4 < len(rows):
        # a short cut of a long list (similar tracks from a radio list): a loop that stops at
        # `limit` does a few dozen steps, where the vectorised cap sorts the whole list
        kept = _first_capped(np.asarray(artist[rows]).tolist(), cap=cap, limit=limit)
    else:
        kept = capped_positions(np.asarray(artist[rows]), cap=cap)[:limit].tolist()
    return [
        Item(row=r, score=s)
        for r, s in zip(rows[kept].tolist(), np.asarray(scores)[kept].tolist(), strict=True)
    ]


def _first_capped(artists: list[int], *, cap: int, limit: int) -> list[int]:
    """The positions `capped_positions(artists, cap=cap)[:limit]` gives, by a loop that stops
    once `limit` are kept."""
    seen: dict[int, int] = {}
    kept: list[int] = []
    for position, a in enumerate(artists):
        n = seen.get(a, 0)
        if n < cap:
            seen[a] = n + 1
            kept.append(position)
            if len(kept) == limit:
                break
    return kept


def check_model(loaded: LoadedBundle, *, source: str) -> None:
    """BadParameter (the `model` of the request) for a source that is neither a model of the
    bundle nor the ensemble; checked before the id, as FastAPI checks parameters first."""
    allowed = sources(loaded, entity="tracks")
    if source not in allowed:
        raise BadParameter("model", f"unknown model {source!r}; one of {allowed}")


def similar_tracks(
    loaded: LoadedBundle,
    *,
    row: int,
    limit: int,
    source: str,
    artist_cap: int,
    per_source: int | None = None,
) -> list[Item]:
    """The tracks most similar to `row` by one model or the ensemble, `artist_cap` per artist
    (the ensemble over `per_source` candidates of each source; None: the scorer's own).

    BadParameter (the `model` of the request) for a source that is neither."""
    check_model(loaded, source=source)
    scorer = loaded.scorers["tracks"]
    artist = loaded.bundle.tracks.artist
    assert artist is not None
    if source == ENSEMBLE:  # the ensemble ranks its whole (bounded) candidate set
        rows, scores = scorer.top(row, scorer.n_items, source=source, per_source=per_source)
        return cap_per_artist(rows, scores, artist=artist, cap=artist_cap, limit=limit)
    # ask for more than `limit`, the artist cap drops some; where one artist crowds the
    # neighbourhood, ask again for four times as many (a few rounds at most)
    want = max(limit * 3, limit + 20)
    while True:
        rows, scores = scorer.top(row, min(want, scorer.n_items), source=source)
        items = cap_per_artist(rows, scores, artist=artist, cap=artist_cap, limit=limit)
        if len(items) >= limit or len(rows) < min(want, scorer.n_items) or want >= 16 * limit + 320:
            return items
        want *= 4


def sources_of(
    loaded: LoadedBundle, *, row: int, rows: list[int], per_source: int | None = None
) -> list[list[str]]:
    """For each of `rows`, the candidate sources of the track ensemble (models, signal tables,
    popularities) whose own top `per_source` for `row` hold it: which sources put it in the
    ensemble's candidates. None of them for a row only a single model's deeper list found."""
    scorer = loaded.scorers["tracks"]
    names = [s for s in scorer.sources() if s != ENSEMBLE]  # the order of candidate_lists
    held = [set(c.tolist()) for c in scorer.candidate_lists(row, per_source)]
    return [[n for n, h in zip(names, held, strict=True) if r in h] for r in rows]


def related_artists(loaded: LoadedBundle, *, row: int, limit: int) -> list[Item]:
    rows, scores = loaded.scorers["artists"].top(row, limit, source=ENSEMBLE)
    return [
        Item(row=int(r), score=float(s))
        for r, s in zip(rows.tolist(), scores.tolist(), strict=True)
    ]


def user_recommendations(
    loaded: LoadedBundle, *, user: int, limit: int, artist_cap: int
) -> list[Item]:
    """Tracks near the user's vector that the user has not played, each with a reason."""
    bundle = loaded.bundle
    users = bundle.users
    if (
        users is None
        or USER_MODEL not in users.vectors
        or (USER_MODEL, "tracks") not in bundle.indexes
    ):
        raise ModelUnavailable(f"bundle {bundle.version} has no {USER_MODEL} user vectors")
    tracks = bundle.tracks
    assert tracks.artist is not None
    played, counts = users.plays(user)
    played_set = set(played.tolist())
    vector = np.asarray(users.vectors[USER_MODEL][user], dtype=np.float32)
    if not vector.any():
        scorer = loaded.scorers["tracks"]
        rows = scorer.popular[~np.isin(scorer.popular, played)][: limit * 3]
        items = cap_per_artist(
            rows, scorer.log_pop[rows], artist=tracks.artist, cap=artist_cap, limit=limit
        )
        return [
            Item(row=i.row, score=i.score, reason="Popular with listeners on segue") for i in items
        ]
    ann = bundle.indexes[(USER_MODEL, "tracks")]
    n = min(ann.n_items, limit * 3 + len(played_set) + 20)
    rows, sims = ann.nearest_to_vector(vector, n=n)
    fresh = ~np.isin(rows, played)
    items = cap_per_artist(
        rows[fresh], sims[fresh], artist=tracks.artist, cap=artist_cap, limit=limit
    )
    return _with_reasons(loaded, items=items, played=played, counts=counts)


def _with_reasons(
    loaded: LoadedBundle,
    *,
    items: list[Item],
    played: NDArray[np.int32],
    counts: NDArray[np.float32],
) -> list[Item]:
    """Explains each track by the user's own artist it is closest to."""
    bundle = loaded.bundle
    artist_of = bundle.tracks.artist
    assert artist_of is not None
    plays_by_artist: dict[int, float] = {}
    for r, c in zip(played.tolist(), counts.tolist(), strict=True):
        a = int(artist_of[r])
        plays_by_artist[a] = plays_by_artist.get(a, 0.0) + c
    own = sorted(plays_by_artist, key=lambda a: -plays_by_artist[a])[:20]
    ann = bundle.indexes.get((USER_MODEL, "artists"))
    names = bundle.artists.names
    out = []
    for item in items:
        a = int(artist_of[item.row])
        if a in plays_by_artist:
            reason = f"More from {names[a]}, whom you listen to"
        elif own and ann is not None:
            best = max(own, key=lambda o: ann.similarity(a, o))
            reason = f"Because you listen to {names[best]}"
        else:
            reason = "Close to what you listen to"
        out.append(Item(row=item.row, score=item.score, reason=reason))
    return out


def search(entities: Entities, *, query: str, limit: int) -> list[int]:
    """Rows whose name contains `query` (case-insensitive), most listened first; all rows if empty."""
    if not query.strip():
        return list(range(min(limit, len(entities))))
    return _most_listened(entities, _name_matches(entities, query=query, limit=limit), limit)


def search_tracks(bundle: Bundle, *, query: str, limit: int) -> list[int]:
    """Tracks whose title or whose artist's name contains `query` (case-insensitive), most
    listened first; all rows if empty. A listener types "radiohead" as often as a title."""
    tracks = bundle.tracks
    if not query.strip():
        return list(range(min(limit, len(tracks))))
    rows = _name_matches(tracks, query=query, limit=limit)
    artists = _name_matches(bundle.artists, query=query, limit=limit)
    if artists and tracks.artist is not None:
        by_artist = np.flatnonzero(np.isin(np.asarray(tracks.artist), artists))
        rows = sorted(set(rows).union(by_artist.tolist()))
    return _most_listened(tracks, rows, limit)


def _name_matches(entities: Entities, *, query: str, limit: int) -> list[int]:
    """Rows whose name contains the non-empty `query`, case-folded; enough of them (20 x
    `limit`, at least 1000) for the most listened to be among them."""
    folded = query.strip().casefold()
    names = entities.names_lower
    if names is None:  # a format-1 bundle: no case-folded names, so the scan decodes each name
        return [r for r in range(len(entities)) if folded in entities.names[r].casefold()]
    return names.find(folded.encode("utf-8"), limit=max(limit * 20, 1000))


def _most_listened(entities: Entities, rows: list[int], limit: int) -> list[int]:
    if not rows:
        return []
    arr = np.asarray(rows, dtype=np.int64)
    order = np.argsort(-np.asarray(entities.listeners)[arr], kind="stable")
    return [int(r) for r in arr[order][:limit]]
