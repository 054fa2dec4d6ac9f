"""A deterministic synthetic catalogue with structure a recommender can learn.

Genres (with a ring of neighbouring genres), artists in genres, tracks by artists, power-law
popularity, users with a mixture of 1-3 favourite genres, sessions that stay in a genre, sometimes
drift to a neighbouring or another favourite genre and sometimes play the same artist again, and
tags drawn from each genre's vocabulary. A few percent of tracks are new releases that nobody has
played yet (cold start: they only have tags).

Time: the sessions are spread over DAYS days from EPOCH, each play `PLAY_SECONDS` (± a minute)
after the one before it (`Sequences.times`). Most tracks are back catalogue, released before the
span (every artist has at least one such track); NEW_RELEASES of them come out during it, on
Fridays; the unplayed new releases come out as the data ends. With `time_dynamics` a track's
popularity is its power-law popularity times a curve of its age: nothing before its release, then
a rise over a day or two and a decay with the track's own half-life down to FLOOR, where the back
catalogue sits. A session picks tracks by its genre, the user's taste and the tracks' popularity
at the session's start, so what is played late in the span differs from what is played early.
Without `time_dynamics` (the control) the catalogue, the users and the session dates are the
same, but popularity does not change over time and release dates do not matter.

Everything is vectorised with numpy, so 1M tracks generate in seconds; the same seed and size
always give the same data.
"""

from __future__ import annotations

import itertools
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
DAY = 86400.0
PLAY_SECONDS = 210.0  # mean time from one play of a session to the next (± 60 s)
# releases and popularity over time
NEW_RELEASES = 0.2  # share of tracks released during the span (the rest: back catalogue)
BACK_CATALOGUE_DAYS = 730.0  # mean age of the back catalogue when the span starts
RISE_DAYS = 1.5  # how fast a release picks up
HALF_LIFE_DAYS = 10.0  # median half-life of a release's popularity (log-normal per track)
FLOOR = 0.03  # the share of its peak popularity a track keeps for good
MAX_REDRAWS = 32  # rejection rounds per pick (each accepts with probability >= FLOOR)


def catalogue_shape(n_tracks: int) -> dict[str, int]:
    """How many genres, artists and users a catalogue of `n_tracks` gets."""
    return {
        "genres": int(np.clip(round(math.sqrt(n_tracks) / 4), 8, 256)),
        "artists": max(10, n_tracks // 10),
        "users": max(1000, n_tracks // 8),
    }


def generate_synthetic(
    *, n_tracks: int = 5000, seed: int = 42, time_dynamics: bool = True
) -> Dataset:
    """The catalogue of `n_tracks` tracks for `seed`; `time_dynamics=False` keeps popularity
    constant over time (same catalogue, users and session dates; other plays)."""
    if not 100 <= n_tracks <= 5_000_000:
        raise ValueError(f"synthetic size must be between 100 and 5000000 tracks, got {n_tracks}")
    # the catalogue and the sessions draw from two streams, so that both settings of
    # `time_dynamics` share the catalogue, the users and the session dates
    rng, srng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
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
    # one random track of every artist is old and played: every genre always has something
    by_artist = np.lexsort((rng.random(n_tracks), track_artist))
    sorted_artist = track_artist[by_artist]
    old = np.zeros(n_tracks, dtype=bool)
    old[by_artist[np.r_[True, sorted_artist[1:] != sorted_artist[:-1]]]] = True
    cold = (rng.random(n_tracks) < 0.03) & ~old
    track_pop[cold] = 0.0
    track_genre = artist_genre[track_artist]

    # release dates: back catalogue before the span, new releases on its Fridays, and the cold
    # tracks as it ends; after its peak, a release's extra popularity halves every `half_life`
    span_start, span_end = EPOCH, EPOCH + DAYS * DAY
    fridays = _fridays(span_start, span_end)
    release = span_start - rng.exponential(BACK_CATALOGUE_DAYS * DAY, size=n_tracks)
    new = (rng.random(n_tracks) < NEW_RELEASES) & ~old & ~cold
    release[new] = fridays[rng.integers(0, len(fridays), size=int(new.sum()))]
    release[cold] = span_end
    half_life = HALF_LIFE_DAYS * DAY * rng.lognormal(0.0, 0.5, size=n_tracks)

    # sampling tables: tracks sorted by (genre, artist, warm first, oldest first), so the tracks
    # of an artist that can be played at a time are a prefix of its run
    order = np.lexsort((release, cold, track_artist, track_genre))
    sorted_genre = track_genre[order]
    genre_start = np.searchsorted(sorted_genre, np.arange(n_genres), side="left")
    genre_end = np.searchsorted(sorted_genre, np.arange(n_genres), side="right")
    position = np.empty(n_tracks, dtype=np.int64)
    position[order] = np.arange(n_tracks)
    artist_first = np.full(n_artists, n_tracks, dtype=np.int64)
    np.minimum.at(artist_first, track_artist, position)
    pop_at = track_pop[order]
    release_at = release[order]
    half_life_at = half_life[order]
    warm_at = ~cold[order]
    artist_at = track_artist[order]
    # the age at which a track is most popular (where its curve peaks)
    rise = RISE_DAYS * DAY
    peak_at = rise * np.log1p(half_life_at / (rise * math.log(2.0)))

    def sample_genre(
        genres: NDArray[np.int64], cum: NDArray[np.float64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Positions in `order` of one track per genre, drawn by the weights behind `cum`, in
        increasing order, and the permutation of `genres` they answer (sorted keys walk the table
        in order: several times faster at 1M than keys in random order)."""
        keys = genres + srng.random(len(genres))
        by_key = np.argsort(keys)
        idx = np.searchsorted(cum, keys[by_key], side="right")
        return np.minimum(idx, n_tracks - 1), by_key

    def draw_tracks(
        genres: NDArray[np.int64],
        when: NDArray[np.float64],
        cum: NDArray[np.float64],
        envelope: NDArray[np.float64] | None,
    ) -> NDArray[np.int64]:
        """Positions of one track per genre, by popularity at `when`: drawn by the popularity
        at its peak within the week (`envelope`, behind `cum`) and kept with the ratio of the
        two (rejection sampling; without an envelope popularity does not change)."""
        pos, by_key = sample_genre(genres, cum)
        if envelope is not None:
            genres, when = genres[by_key], when[by_key]
            redo = np.arange(len(pos))
            for _ in range(MAX_REDRAWS):
                p = pos[redo]
                now = _curve(when[redo] - release_at[p], half_life_at[p])
                keep = srng.random(len(redo)) * np.maximum(envelope[p], 1e-300) < now
                redo = redo[~keep]
                if not len(redo):
                    break
                again, by = sample_genre(genres[redo], cum)
                pos[redo[by]] = again
        out = np.empty(len(pos), dtype=np.int64)
        out[by_key] = pos
        return out

    # users: 1-3 favourite genres with Dirichlet weights
    user_genres = rng.choice(n_genres, size=(n_users, 3), p=genre_p)
    k = rng.choice(3, size=n_users, p=[0.35, 0.4, 0.25]) + 1
    user_w = rng.dirichlet(np.ones(3), size=n_users)
    user_w[np.arange(3)[None, :] >= k[:, None]] = 0.0
    user_cum = np.cumsum(user_w / user_w.sum(axis=1, keepdims=True), axis=1)

    def favourite_genre(users: NDArray[np.int64]) -> NDArray[np.int64]:
        pick = (srng.random(len(users))[:, None] > user_cum[users]).sum(axis=1)
        return user_genres[users, np.minimum(pick, 2)]

    # sessions: each user's in time order, each play a few minutes after the one before
    per_user = 1 + srng.poisson(4, size=n_users)
    session_user = np.repeat(np.arange(n_users), per_user)
    n_sessions = len(session_user)
    lengths = np.minimum(3 + srng.poisson(9, size=n_sessions), 40)
    indptr = np.zeros(n_sessions + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    n_items = int(indptr[-1])
    timestamps = span_start + srng.random(n_sessions) * (span_end - span_start)
    timestamps = timestamps[np.lexsort((timestamps, session_user))]
    gaps = srng.uniform(PLAY_SECONDS - 60.0, PLAY_SECONDS + 60.0, size=n_items)
    elapsed = np.cumsum(gaps) - gaps
    times = np.repeat(timestamps, lengths) + (elapsed - np.repeat(elapsed[indptr[:-1]], lengths))
    items = np.empty(n_items, dtype=np.int32)
    genre = favourite_genre(session_user)
    prev = np.zeros(n_sessions, dtype=np.int64)

    # the sessions are played week by week, the weeks starting on the release Fridays (so no
    # track comes out within a week): a track is drawn by its popularity at its peak within the
    # week (`envelope`) and kept with the ratio of its popularity at the session's start to that
    edges = np.array([span_start, span_end])
    if time_dynamics:
        edges = np.unique(np.concatenate([edges, fridays]))
    session_week = np.searchsorted(edges, timestamps, side="right") - 1
    for week in range(len(edges) - 1):
        sessions = np.flatnonzero(session_week == week)
        if not len(sessions):
            continue
        session_lengths = lengths[sessions]
        lo, hi = edges[week], edges[week + 1]
        playable = warm_at
        envelope = None
        weights = pop_at
        if time_dynamics:
            out = release_at > lo  # not out yet (releases fall on week starts)
            envelope = _curve(np.clip(peak_at, lo - release_at, hi - release_at), half_life_at)
            envelope[out] = 0.0
            weights = pop_at * envelope
            playable = warm_at & ~out
        cum = _genre_cum(weights, sorted_genre, genre_start, genre_end)
        artist_playable = np.bincount(artist_at, weights=playable, minlength=n_artists)
        artist_playable = artist_playable.astype(np.int64)
        for step in range(int(session_lengths.max())):
            active = sessions[session_lengths > step]
            cur = genre[active]
            r = srng.random(len(active))
            drift = r < 0.08
            if drift.any():
                users = session_user[active[drift]]
                ring = (cur[drift] + srng.choice([-1, 1], size=int(drift.sum()))) % n_genres
                cur[drift] = np.where(srng.random(len(users)) < 0.5, ring, favourite_genre(users))
                genre[active] = cur
            pos = np.empty(len(active), dtype=np.int64)
            draw = np.ones(len(active), dtype=bool)
            if step > 0:
                # the same artist again: one of its tracks out by now, uniformly
                again = (srng.random(len(active)) < 0.2) & ~drift
                pa = track_artist[prev[active[again]]]
                n_ok = artist_playable[pa]
                ok = n_ok > 0
                idx = np.flatnonzero(again)[ok]
                pos[idx] = artist_first[pa[ok]] + (srng.random(len(idx)) * n_ok[ok]).astype(
                    np.int64
                )
                draw[idx] = False
            pos[draw] = draw_tracks(cur[draw], timestamps[active[draw]], cum, envelope)
            track = order[pos]
            items[indptr[active] + step] = track
            prev[active] = track
    sequences = Sequences(
        indptr=indptr,
        items=items,
        user=session_user.astype(np.int32),
        timestamp=timestamps,
        ordered=True,
        times=times,
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
        name=f"synthetic:{n_tracks}:seed={seed}" + ("" if time_dynamics else ":static-popularity"),
        items=items_table,
        user_ids=np.asarray([f"u{i:0{n_users_width}d}" for i in range(n_users)], dtype=str),
        interactions=interactions_from_sequences(sequences, n_users=n_users, n_tracks=n_tracks),
        sequences=sequences,
        interactions_from_sequences=True,
        report=LoadReport(),
        truth={
            "track_genre": track_genre,
            "genre_names": genre_names,
            # release dates (unix seconds) and popularity half-lives (seconds); they shape the
            # plays only with time_dynamics
            "track_release": release,
            "track_half_life": half_life,
            "time_dynamics": time_dynamics,
        },
    )


def _normalise(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x / x.sum()


def _fridays(start: float, end: float) -> NDArray[np.float64]:
    """Midnights (UTC) of the Fridays in [start, end): the release days."""
    first_day = math.ceil(start / DAY)
    weekday = (first_day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    first = (first_day + (4 - weekday) % 7) * DAY
    return np.arange(first, end, 7 * DAY, dtype=np.float64)


def _curve(age: NDArray[np.float64], half_life: NDArray[np.float64]) -> NDArray[np.float64]:
    """A track's popularity `age` seconds after its release, relative to its power-law
    popularity: none before the release, FLOOR at it, a rise over RISE_DAYS and a decay with
    `half_life` back down to FLOOR."""
    a = np.maximum(age, 0.0)
    burst = -np.expm1(-a / (RISE_DAYS * DAY)) * np.exp2(-a / half_life)
    return np.where(age >= 0.0, FLOOR + (1.0 - FLOOR) * burst, 0.0)


def _genre_cum(
    weights: NDArray[np.float64],
    sorted_genre: NDArray[np.int32],
    genre_start: NDArray[np.int64],
    genre_end: NDArray[np.int64],
) -> NDArray[np.float64]:
    """For tracks sorted by genre: genre + the share of the genre's weight up to the track
    (1 at a genre's last track), for `searchsorted(cum, genre + u)`. A genre without weight
    is drawn from uniformly."""
    cs = np.concatenate([[0.0], np.cumsum(weights)])
    before = cs[genre_start]
    total = cs[genre_end] - before
    frac = (cs[1:] - before[sorted_genre]) / np.where(total > 0, total, 1.0)[sorted_genre]
    for g in np.flatnonzero(total <= 0):
        size = genre_end[g] - genre_start[g]
        frac[genre_start[g] : genre_end[g]] = np.arange(1, size + 1) / max(size, 1)
    nonempty = genre_end > genre_start
    frac[genre_end[nonempty] - 1] = 1.0
    return sorted_genre + frac


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
    # every possible name once (k words of `words`), then looked up: 1M names in a blink
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
