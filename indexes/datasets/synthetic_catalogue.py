"""The synthetic catalogue: genres, artists, tracks, their popularity and release dates, the
listeners' favourite genres, and the names and tags of the item table (see
`indexes.datasets.synthetic`).

Every function draws from the catalogue's random stream in a fixed order: the same seed and
size give the same catalogue.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexes.datasets.shape import Items, make_items

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
DAY = 86400.0
# releases
NEW_RELEASES = 0.2  # share of tracks released during the span (the rest: back catalogue)
BACK_CATALOGUE_DAYS = 730.0  # mean age of the back catalogue when the span starts
HALF_LIFE_DAYS = 10.0  # median half-life of a release's popularity (log-normal per track)


@dataclass(frozen=True)
class SyntheticCatalogue:
    """Genres, artists and tracks with their popularity and release dates."""

    genre_names: list[str]
    genre_p: NDArray[np.float64]  # share of the artists (and the users' favourites) per genre
    track_artist: NDArray[np.int32]
    track_genre: NDArray[np.int32]
    track_pop: NDArray[np.float64]  # power-law popularity; 0 for the cold tracks
    cold: NDArray[np.bool_]  # new releases nobody plays
    release: NDArray[np.float64]  # unix seconds
    half_life: NDArray[np.float64]  # seconds
    fridays: NDArray[np.float64]  # the release days within the span
    n_artists: int

    @property
    def n_genres(self) -> int:
        return len(self.genre_names)

    @property
    def n_tracks(self) -> int:
        return len(self.track_artist)


def make_catalogue(
    rng: np.random.Generator, *, n_tracks: int, n_genres: int, n_artists: int
) -> SyntheticCatalogue:
    genre_p = _genre_popularity(rng, n_genres)
    artist_genre, artist_pop = _artists(rng, n_artists=n_artists, genre_p=genre_p)
    track_artist, track_pop = _tracks(rng, n_tracks=n_tracks, artist_pop=artist_pop)
    old, cold = _old_and_cold(rng, track_artist)
    track_pop[cold] = 0.0
    release, half_life, fridays = _releases(rng, old=old, cold=cold)
    return SyntheticCatalogue(
        genre_names=_genre_names(n_genres),
        genre_p=genre_p,
        track_artist=track_artist,
        track_genre=artist_genre[track_artist],
        track_pop=track_pop,
        cold=cold,
        release=release,
        half_life=half_life,
        fridays=fridays,
        n_artists=n_artists,
    )


def _genre_popularity(rng: np.random.Generator, n_genres: int) -> NDArray[np.float64]:
    """Power-law genre popularity in random order, as probabilities."""
    genre_pop = rng.permutation(1.0 / np.arange(1, n_genres + 1) ** 0.7)
    return genre_pop / genre_pop.sum()


def _artists(
    rng: np.random.Generator, *, n_artists: int, genre_p: NDArray[np.float64]
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Each artist's genre (every genre gets at least one, the rest by genre popularity) and
    power-law popularity."""
    n_genres = len(genre_p)
    artist_genre = np.concatenate(
        [np.arange(n_genres), rng.choice(n_genres, size=n_artists - n_genres, p=genre_p)]
    ).astype(np.int32)
    artist_pop = rng.permutation(1.0 / np.arange(1, n_artists + 1) ** 0.9)
    return artist_genre, artist_pop


def _tracks(
    rng: np.random.Generator, *, n_tracks: int, artist_pop: NDArray[np.float64]
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Each track's artist (every artist gets at least one; artist sizes vary) and popularity
    (the artist's, falling with the track's rank within the artist, with noise)."""
    n_artists = len(artist_pop)
    extra = rng.choice(n_artists, size=n_tracks - n_artists, p=_normalise(artist_pop**0.3))
    track_artist = np.concatenate([np.arange(n_artists), extra]).astype(np.int32)
    track_artist = rng.permutation(track_artist).astype(np.int32)
    within = _rank_within(track_artist)
    track_pop = artist_pop[track_artist] / (1.0 + within) ** 0.8
    track_pop *= rng.lognormal(0.0, 0.5, size=n_tracks)
    return track_artist, track_pop


def _old_and_cold(
    rng: np.random.Generator, track_artist: NDArray[np.int32]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """One random track of every artist is old and played, so every genre always has
    something; a few percent of the others are cold (nobody plays them)."""
    n_tracks = len(track_artist)
    by_artist = np.lexsort((rng.random(n_tracks), track_artist))
    sorted_artist = track_artist[by_artist]
    old = np.zeros(n_tracks, dtype=bool)
    old[by_artist[np.r_[True, sorted_artist[1:] != sorted_artist[:-1]]]] = True
    cold = (rng.random(n_tracks) < 0.03) & ~old
    return old, cold


def _releases(
    rng: np.random.Generator, *, old: NDArray[np.bool_], cold: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Release dates (the back catalogue before the span, new releases on its Fridays, the cold
    tracks as it ends), popularity half-lives (after its peak, a release's extra popularity
    halves every half-life) and the Fridays."""
    n_tracks = len(old)
    span_start, span_end = EPOCH, EPOCH + DAYS * DAY
    fridays = _fridays(span_start, span_end)
    release = span_start - rng.exponential(BACK_CATALOGUE_DAYS * DAY, size=n_tracks)
    new = (rng.random(n_tracks) < NEW_RELEASES) & ~old & ~cold
    release[new] = fridays[rng.integers(0, len(fridays), size=int(new.sum()))]
    release[cold] = span_end
    half_life = HALF_LIFE_DAYS * DAY * rng.lognormal(0.0, 0.5, size=n_tracks)
    return release, half_life, fridays


@dataclass(frozen=True)
class Listeners:
    """Users with 1-3 favourite genres and Dirichlet weights over them."""

    genres: NDArray[np.int64]  # users x 3 favourite genres
    cum: NDArray[np.float64]  # users x 3 cumulative weights of the favourites

    @property
    def n_users(self) -> int:
        return len(self.genres)

    def user_ids(self) -> NDArray[np.str_]:
        return np.asarray(_ids("u", self.n_users, width=len(str(self.n_users))), dtype=str)

    def favourite_genre(
        self, srng: np.random.Generator, users: NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """One favourite genre per user of `users`, drawn by the user's weights."""
        pick = (srng.random(len(users))[:, None] > self.cum[users]).sum(axis=1)
        return self.genres[users, np.minimum(pick, 2)]


def make_listeners(
    rng: np.random.Generator, *, n_users: int, genre_p: NDArray[np.float64]
) -> Listeners:
    user_genres = rng.choice(len(genre_p), size=(n_users, 3), p=genre_p)
    k = rng.choice(3, size=n_users, p=[0.35, 0.4, 0.25]) + 1
    user_w = rng.dirichlet(np.ones(3), size=n_users)
    user_w[np.arange(3)[None, :] >= k[:, None]] = 0.0
    return Listeners(
        genres=user_genres, cum=np.cumsum(user_w / user_w.sum(axis=1, keepdims=True), axis=1)
    )


def catalogue_items(rng: np.random.Generator, catalogue: SyntheticCatalogue) -> Items:
    """The item table: ids, generated names and tags."""
    n_tracks, n_artists = catalogue.n_tracks, catalogue.n_artists
    tag_names, tag_rows, tag_cols, tag_weights = _tags(
        rng, track_genre=catalogue.track_genre, genre_names=catalogue.genre_names
    )
    width = len(str(n_tracks))
    return make_items(
        track_ids=_ids("t", n_tracks, width=width),
        track_names=_names(rng, n_tracks, WORDS, 2),
        track_artist=catalogue.track_artist,
        artist_ids=_ids("a", n_artists, width=width),
        artist_names=_artist_names(rng, n_artists),
        tag_names=tag_names,
        tag_rows=tag_rows,
        tag_cols=tag_cols,
        tag_weights=tag_weights,
    )


def _tags(
    rng: np.random.Generator, *, track_genre: NDArray[np.int32], genre_names: list[str]
) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """Tag names and (track, tag, weight) entries: the genre's own name, words from its
    vocabulary, and some noise."""
    n_tracks = len(track_genre)
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
    weights = np.concatenate(wts).astype(np.float32)
    return list(tag_names), np.concatenate(rows), np.concatenate(cols), weights


def _ids(prefix: str, n: int, *, width: int) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def _normalise(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x / x.sum()


def _fridays(start: float, end: float) -> NDArray[np.float64]:
    """Midnights (UTC) of the Fridays in [start, end): the release days."""
    first_day = math.ceil(start / DAY)
    weekday = (first_day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    first = (first_day + (4 - weekday) % 7) * DAY
    return np.arange(first, end, 7 * DAY, dtype=np.float64)


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
    # every possible name once (k words of `words`), then looked up: vectorised, for millions
    # of tracks
    table = np.asarray([" ".join(c).title() for c in itertools.product(words, repeat=k)])
    code = picks @ (len(words) ** np.arange(k - 1, -1, -1, dtype=np.int64))
    names: list[str] = table[code].tolist()
    return names


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    a = rng.integers(0, len(SYLLABLES), size=(n, 4))
    two = rng.random(n) < 0.5
    out = []
    for i in range(n):
        first = (SYLLABLES[a[i, 0]] + SYLLABLES[a[i, 1]]).title()
        out.append(first + " " + (SYLLABLES[a[i, 2]] + SYLLABLES[a[i, 3]]).title() if two[i]
                   else "The " + first + "s")  # fmt: skip
    return out
