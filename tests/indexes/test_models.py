"""The contract every vector model passes."""

from __future__ import annotations

import numpy as np
import pytest

from indexes.datasets.shape import Dataset
from indexes.models.base import VectorModel, Vectors, normalise_rows
from indexes.models.registry import default_models

MODELS = default_models(dims=16)


@pytest.fixture(scope="module", params=MODELS, ids=[m.name for m in MODELS])
def fitted(request: pytest.FixtureRequest, tiny_data: Dataset) -> tuple[VectorModel, Vectors]:
    model: VectorModel = request.param
    return model, model.fit(tiny_data, seed=1)


def test_vectors_have_the_promised_shape(
    fitted: tuple[VectorModel, Vectors], tiny_data: Dataset
) -> None:
    model, v = fitted
    v.check(tiny_data)  # float32, right shapes, finite, masked-in rows non-zero
    assert v.dims == model.dims == 16
    assert v.tracks.dtype == np.float32 and v.artists.dtype == np.float32
    assert model.metric in {"angular", "dot", "euclidean"}
    assert (v.tracks[~v.track_mask] == 0).all()


def test_every_played_track_gets_a_vector(
    fitted: tuple[VectorModel, Vectors], tiny_data: Dataset
) -> None:
    """Every track with enough support for the model gets a vector (ALS: `min_listeners`
    listeners; word2vec: `min_plays` plays in sequences; content: one play), and so does every
    artist."""
    model, v = fitted
    listeners = np.diff(tiny_data.interactions.tocsc().indptr)
    seq_plays = np.bincount(tiny_data.sequences.items, minlength=tiny_data.items.n_tracks)
    enough = (listeners >= getattr(model, "min_listeners", 1)) & (
        seq_plays >= getattr(model, "min_plays", 1)
    )
    assert enough.mean() > 0.3
    assert v.track_mask[enough].mean() > 0.99
    assert v.artist_mask.mean() > 0.99


def test_als_leaves_tracks_with_few_listeners_without_a_vector(tiny_data: Dataset) -> None:
    from indexes.models.als import AlsModel

    listeners = np.diff(tiny_data.interactions.tocsc().indptr)
    few = (listeners > 0) & (listeners < 5)
    assert few.any()
    v = AlsModel(factors=8, iterations=3, min_listeners=5).fit(tiny_data, seed=1)
    assert not v.track_mask[few].any() and v.track_mask[listeners >= 5].all()
    assert v.artist_mask.mean() > 0.99  # artists still get vectors from all their played tracks
    every = AlsModel(factors=8, iterations=3, min_listeners=1).fit(tiny_data, seed=1)
    assert every.track_mask[listeners > 0].all()


def test_word2vec_leaves_rarely_played_tracks_without_a_vector(tiny_data: Dataset) -> None:
    from indexes.models.word2vec import Word2VecModel

    plays = np.bincount(tiny_data.sequences.items, minlength=tiny_data.items.n_tracks)
    rare = (plays > 0) & (plays < 5)
    assert rare.any()
    v = Word2VecModel(vector_size=8, epochs=1, min_plays=5).fit(tiny_data, seed=1)
    assert not v.track_mask[rare].any() and v.track_mask[plays >= 5].mean() > 0.99
    assert (v.tracks[rare] == 0).all()
    assert v.artist_mask.mean() > 0.99


def test_vectors_learn_the_catalogue_structure(
    fitted: tuple[VectorModel, Vectors], tiny_data: Dataset
) -> None:
    """A track's nearest neighbours share its genre far more often than chance."""
    _, v = fitted
    genre = np.asarray(tiny_data.items.track_tags.argmax(axis=1)).ravel()
    unit = normalise_rows(v.tracks)
    rows = np.flatnonzero(v.track_mask)
    rng = np.random.default_rng(0)
    queries = rng.choice(rows, 300, replace=False)
    sims = unit[queries] @ unit[rows].T
    sims[np.arange(len(queries)), np.searchsorted(rows, queries)] = -np.inf  # not itself
    top = rows[np.argsort(-sims, axis=1)[:, :10]]
    agree = (genre[top] == genre[queries][:, None]).mean()
    chance = (genre[rng.choice(rows, 5000)] == genre[rng.choice(rows, 5000)]).mean()
    assert agree > 3 * chance, (agree, chance)


def test_content_model_covers_cold_start(tiny_data: Dataset) -> None:
    cold = tiny_data.track_plays() == 0
    assert cold.any()
    by_name = {m.name: m.fit(tiny_data, seed=1) for m in MODELS}
    assert by_name["content"].track_mask[cold].all()
    assert not by_name["als"].track_mask[cold].any()


def test_check_rejects_bad_vectors(tiny_data: Dataset) -> None:
    n, a = tiny_data.items.n_tracks, tiny_data.items.n_artists
    good = dict(
        tracks=np.ones((n, 4), np.float32),
        track_mask=np.ones(n, bool),
        artists=np.ones((a, 4), np.float32),
        artist_mask=np.ones(a, bool),
    )
    Vectors(**good).check(tiny_data)
    bad = dict(good, tracks=np.full((n, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        Vectors(**bad).check(tiny_data)
    with pytest.raises(ValueError, match="float32"):
        Vectors(**dict(good, tracks=np.ones((n, 4)))).check(tiny_data)
    with pytest.raises(ValueError, match="rows"):
        Vectors(**dict(good, tracks=np.ones((n - 1, 4), np.float32))).check(tiny_data)
    with pytest.raises(ValueError, match="all zeros"):
        Vectors(**dict(good, artists=np.zeros((a, 4), np.float32))).check(tiny_data)


def test_one_thread_fits_the_same_vectors_in_every_process(tiny_data: Dataset) -> None:
    """With one thread a model is a function of data and seed, in any process; with two,
    word2vec's threads race and two fits differ."""
    import subprocess
    import sys

    script = (
        "import hashlib;"
        "from indexes.datasets.synthetic import generate_synthetic;"
        "from indexes.models.registry import default_models;"
        "d = generate_synthetic(n_tracks=600, seed=3);"
        "print(*[hashlib.sha256(m.fit(d, seed=1).tracks.tobytes()).hexdigest()"
        " for m in default_models(dims=8, threads=1)])"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert runs[0] == runs[1] and len(runs[0]) == len(MODELS)
