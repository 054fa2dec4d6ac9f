"""A fit is a function of data and seed: the same vectors in every process, with one thread."""

from __future__ import annotations

import pytest

from indexes.datasets.shape import Dataset
from indexes.models.registry import default_models

MODELS = default_models(dims=16)


@pytest.mark.slow
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
