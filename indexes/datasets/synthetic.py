"""A deterministic synthetic catalogue with structure a recommender can learn.

Genres (with a ring of neighbouring genres), artists in genres, tracks by artists, power-law
popularity, users with a mixture of 1-3 favourite genres, sessions that stay in a genre, sometimes
drift to a neighbouring or another favourite genre and sometimes play the same artist again, and
tags drawn from each genre's vocabulary. A few percent of tracks are new releases that nobody has
played yet (cold start: they only have tags).

Everything is vectorised with numpy, so 1M tracks generate in seconds; the same seed and size
always give the same data.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from indexes.datasets.report import LoadReport
from indexes.datasets.shape import Dataset, Sequences, interactions_from_sequences, make_items

PREFIXES = (
    "dark", "dream", "acid", "neo", "post", "deep", "lo-fi", "space", "folk", "afro", "synth",
    "noise", "chamber", "drill", "math", "garage", "cosmic", "indie", "hard", "soft",
)  # fmt: skip
BASES = (
    "pop", "rock", "house", "jazz", "metal", "techno", "soul", "punk", "wave", "hop", "core",
    "dub", "grass", "funk", "trance", "blues",
)  # fmt: skip
MOODS = (
    "chill", "energetic", "melancholic", "upbeat", "moody", "atmospheric", "raw", "groovy",
    "dreamy", "aggressive", "mellow", "epic", "warm", "cold", "hypnotic", "playful",
)  # fmt: skip
SYLLABLES = (
    "ka", "lo", "mi", "ra", "zen", "vo", "shi", "ta", "ne", "bel", "dor", "an", "qu", "il",
    "sa", "mor", "ux", "fen", "gal", "ry", "po", "lin", "dra", "ve",
)  # fmt: skip
WORDS = (
    "night", "river", "glass", "echo", "summer", "ghost", "neon", "paper", "silver", "storm",
    "heart", "city", "velvet", "fire", "ocean", "shadow", "golden", "signal", "wild", "dust",
    "mirror", "satellite", "honey", "winter", "garden", "static", "orbit", "stone", "blue", "fever",
)  # fmt: skip

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAYS = 90


def catalogue_shape(n_tracks: int) -> dict[str, int]:
    """How many genres, artists and users a catalogue of `n_tracks` gets."""
    return {
        "genres": int(np.clip(round(math.sqrt(n_tracks) / 4), 8, 256)),
        "artists": max(10, n_tracks // 10),
        "users": max(1000, n_tracks // 8),
    }


def generate_synthetic(*, n_tracks: int = 5000, seed: int = 42) -> Dataset:
    if not 100 <= n_tracks <= 5_000_000:
        raise ValueError(f"synthetic size must be between 100 and 5000000 tracks, got {n_tracks}")
    rng = np.random.default_rng(seed)
    shape = catalogue_shape(n_tracks)
    n_genres, n_artists, n_users = shape["genres"], shape["artists"], shape["users"]

    # genres: popularity and a tag vocabulary
    genre_names = _genre_names(n_genres)
    genre_pop = 1.0 / np.arange(1, n_genres + 1) ** 0.7
    genre_pop = rng.permutation(genre_pop)
    genre_p = genre_pop / genre_pop.sum()

    # artists: every genre gets at least one, the rest by genre popularity
    artist_genre = np.concatenate(
        [np.arange(n_genres), rng.choice(n_genres, size=n_artists - n_genres, p=genre_p)]
    ).astype(np.int32)
    artist_pop = rng.permutation(1.0 / np.arange(1, n_artists + 1) ** 0.9)

    # tracks: every artist gets at least one; artist sizes vary
    extra = rng.choice(n_artists, size=n_tracks - n_artists, p=_normalise(artist_pop**0.3))
    track_artist = np.concatenate([np.arange(n_artists), extra]).astype(np.int32)
    track_artist = rng.permutation(track_artist).astype(np.int32)
    within = _rank_within(track_artist)
    track_pop = artist_pop[track_artist] / (1.0 + within) ** 0.8
    track_pop *= rng.lognormal(0.0, 0.5, size=n_tracks)
    cold = rng.random(n_tracks) < 0.03
    track_pop[cold] = 0.0
    track_genre = artist_genre[track_artist]

    # sampling tables: tracks sorted by (genre, artist, warm first)
    order = np.lexsort((cold, track_artist, track_genre))
    sorted_genre = track_genre[order]
    weights = track_pop[order]
    genre_start = np.searchsorted(sorted_genre, np.arange(n_genres), side="left")
    genre_end = np.searchsorted(sorted_genre, np.arange(n_genres), side="right")
    cum = np.empty(n_tracks, dtype=np.float64)
    for g in range(n_genres):
        seg = weights[genre_start[g] : genre_end[g]]
        total = seg.sum()
        frac = np.cumsum(seg) / total if total > 0 else np.linspace(0, 1, len(seg) + 1)[1:]
        frac[-1] = 1.0
        cum[genre_start[g] : genre_end[g]] = g + frac
    position = np.empty(n_tracks, dtype=np.int64)
    position[order] = np.arange(n_tracks)
    artist_first = np.full(n_artists, n_tracks, dtype=np.int64)
    np.minimum.at(artist_first, track_artist, position)
    artist_warm = np.bincount(track_artist, weights=(~cold).astype(np.float64), minlength=n_artists)
    artist_warm = artist_warm.astype(np.int64)

    def sample_genre(genres: NDArray[np.int64]) -> NDArray[np.int64]:
        idx = np.searchsorted(cum, genres + rng.random(len(genres)), side="right")
        return order[np.minimum(idx, n_tracks - 1)]

    # users: 1-3 favourite genres with Dirichlet weights
    user_genres = rng.choice(n_genres, size=(n_users, 3), p=genre_p)
    k = rng.choice(3, size=n_users, p=[0.35, 0.4, 0.25]) + 1
    user_w = rng.dirichlet(np.ones(3), size=n_users)
    user_w[np.arange(3)[None, :] >= k[:, None]] = 0.0
    user_cum = np.cumsum(user_w / user_w.sum(axis=1, keepdims=True), axis=1)

    def favourite_genre(users: NDArray[np.int64]) -> NDArray[np.int64]:
        pick = (rng.random(len(users))[:, None] > user_cum[users]).sum(axis=1)
        return user_genres[users, np.minimum(pick, 2)]

    # sessions
    per_user = 1 + rng.poisson(4, size=n_users)
    session_user = np.repeat(np.arange(n_users), per_user)
    n_sessions = len(session_user)
    lengths = np.minimum(3 + rng.poisson(9, size=n_sessions), 40)
    indptr = np.zeros(n_sessions + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    items = np.empty(int(indptr[-1]), dtype=np.int32)
    genre = favourite_genre(session_user)
    prev = np.zeros(n_sessions, dtype=np.int64)
    for step in range(int(lengths.max())):
        active = np.flatnonzero(lengths > step)
        cur = genre[active]
        r = rng.random(len(active))
        drift = r < 0.08
        if drift.any():
            users = session_user[active[drift]]
            ring = (cur[drift] + rng.choice([-1, 1], size=int(drift.sum()))) % n_genres
            cur[drift] = np.where(rng.random(len(users)) < 0.5, ring, favourite_genre(users))
            genre[active] = cur
        track = sample_genre(cur)
        if step > 0:
            again = (rng.random(len(active)) < 0.2) & ~drift
            pa = track_artist[prev[active[again]]]
            warm = artist_warm[pa]
            ok = warm > 0
            pick = artist_first[pa[ok]] + (rng.random(int(ok.sum())) * warm[ok]).astype(np.int64)
            idx = np.flatnonzero(again)[ok]
            track[idx] = order[pick]
        items[indptr[active] + step] = track
        prev[active] = track
    timestamps = EPOCH + rng.random(n_sessions) * DAYS * 86400.0
    sequences = Sequences(
        indptr=indptr,
        items=items,
        user=session_user.astype(np.int32),
        timestamp=timestamps,
        ordered=True,
    )

    # tags: the genre's own name, words from its vocabulary, and some noise
    tag_names, genre_vocab = _tag_vocabulary(genre_names)
    n_vocab = genre_vocab.shape[1]
    rows = [np.arange(n_tracks)]
    cols = [genre_vocab[track_genre, 0]]
    wts = [np.full(n_tracks, 3.0)]
    for _ in range(3):
        has = rng.random(n_tracks) < 0.6
        t = np.flatnonzero(has)
        rows.append(t)
        cols.append(genre_vocab[track_genre[t], rng.integers(1, n_vocab, size=len(t))])
        wts.append(np.ones(len(t)))
    noisy = np.flatnonzero(rng.random(n_tracks) < 0.15)
    rows.append(noisy)
    cols.append(rng.integers(0, len(tag_names), size=len(noisy)))
    wts.append(np.ones(len(noisy)))

    width = len(str(n_tracks))
    items_table = make_items(
        track_ids=[f"t{i:0{width}d}" for i in range(n_tracks)],
        track_names=_names(rng, n_tracks, WORDS, 2),
        track_artist=track_artist,
        artist_ids=[f"a{i:0{width}d}" for i in range(n_artists)],
        artist_names=_artist_names(rng, n_artists),
        tag_names=list(tag_names),
        tag_rows=np.concatenate(rows),
        tag_cols=np.concatenate(cols),
        tag_weights=np.concatenate(wts).astype(np.float32),
    )
    n_users_width = len(str(n_users))
    return Dataset(
        name=f"synthetic:{n_tracks}:seed={seed}",
        items=items_table,
        user_ids=np.asarray([f"u{i:0{n_users_width}d}" for i in range(n_users)], dtype=str),
        interactions=interactions_from_sequences(sequences, n_users=n_users, n_tracks=n_tracks),
        sequences=sequences,
        interactions_from_sequences=True,
        report=LoadReport(),
        truth={"track_genre": track_genre, "genre_names": genre_names},
    )


def _normalise(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x / x.sum()


def _rank_within(groups: NDArray[np.int32]) -> NDArray[np.int64]:
    """For each element, how many earlier elements share its group."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.searchsorted(sorted_groups, sorted_groups, side="left")
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups)) - starts
    return rank


def _genre_names(n: int) -> list[str]:
    names = [f"{p} {b}" for b in BASES for p in PREFIXES]
    rng = np.random.default_rng(7)
    names = [names[i] for i in rng.permutation(len(names))]
    return [names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")
            for i in range(n)]  # fmt: skip


def _tag_vocabulary(genre_names: list[str]) -> tuple[list[str], NDArray[np.int64]]:
    """All tag names, and per genre a row of tag indexes (its own name first)."""
    tags: dict[str, int] = {}

    def tag(name: str) -> int:
        return tags.setdefault(name, len(tags))

    rng = np.random.default_rng(11)
    vocab = []
    for name in genre_names:
        words = name.split(" ")
        moods = rng.choice(len(MOODS), size=3, replace=False)
        row = [tag(name), tag(words[0]), tag(words[1])] + [tag(MOODS[m]) for m in moods]
        vocab.append(row)
    return list(tags), np.asarray(vocab, dtype=np.int64)


def _names(rng: np.random.Generator, n: int, words: tuple[str, ...], k: int) -> list[str]:
    picks = rng.integers(0, len(words), size=(n, k))
    return [" ".join(words[j] for j in row).title() for row in picks]


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    a = rng.integers(0, len(SYLLABLES), size=(n, 4))
    two = rng.random(n) < 0.5
    out = []
    for i in range(n):
        first = (SYLLABLES[a[i, 0]] + SYLLABLES[a[i, 1]]).title()
        out.append(first + " " + (SYLLABLES[a[i, 2]] + SYLLABLES[a[i, 3]]).title() if two[i]
                   else "The " + first + "s")  # fmt: skip
    return out
