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

The catalogue and its listeners are made in `indexes.datasets.synthetic_catalogue`, the sessions
in `indexes.datasets.synthetic_sessions` (where the constants named above live). Everything is
vectorised with numpy, for catalogues of millions of tracks (generation times:
`loadtest/README.md`, stage ``generate``); the same seed and size always give the same data.
"""

from __future__ import annotations

import math

import numpy as np

from indexes.datasets.report import LoadReport
from indexes.datasets.shape import Dataset, interactions_from_sequences
from indexes.datasets.synthetic_catalogue import (
    DAY,
    DAYS,
    EPOCH,
    catalogue_items,
    make_catalogue,
    make_listeners,
)
from indexes.datasets.synthetic_sessions import play_sessions

__all__ = ["DAY", "DAYS", "EPOCH", "catalogue_shape", "generate_synthetic"]


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
    # `time_dynamics` share the catalogue, the users and the session dates; within each stream
    # the order of the draws below is what makes a seed give the same data
    rng, srng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    shape = catalogue_shape(n_tracks)
    catalogue = make_catalogue(
        rng, n_tracks=n_tracks, n_genres=shape["genres"], n_artists=shape["artists"]
    )
    listeners = make_listeners(rng, n_users=shape["users"], genre_p=catalogue.genre_p)
    sequences = play_sessions(
        srng, catalogue=catalogue, listeners=listeners, time_dynamics=time_dynamics
    )
    items = catalogue_items(rng, catalogue)
    n_users = listeners.n_users
    return Dataset(
        name=f"synthetic:{n_tracks}:seed={seed}" + ("" if time_dynamics else ":static-popularity"),
        items=items,
        user_ids=listeners.user_ids(),
        interactions=interactions_from_sequences(sequences, n_users=n_users, n_tracks=n_tracks),
        sequences=sequences,
        interactions_from_sequences=True,
        report=LoadReport(),
        truth={
            "track_genre": catalogue.track_genre,
            "genre_names": catalogue.genre_names,
            # release dates (unix seconds) and popularity half-lives (seconds); they shape the
            # plays only with time_dynamics
            "track_release": catalogue.release,
            "track_half_life": catalogue.half_life,
            "time_dynamics": time_dynamics,
        },
    )
