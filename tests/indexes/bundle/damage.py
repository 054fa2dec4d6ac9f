"""Damage done to a bundle's files the way a bad disk, a bad copy or a hand would."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexes.bundle.metrics import CHILDREN_WORD, node_bytes


def corrupt_children(
    path: Path, *, n_items: int, dims: int, metric: str = "angular", value: int = 0x3FFFFFFF
) -> None:
    """Overwrites the child node ids of every non-item node of an Annoy file in place, its size
    kept: Annoy maps the file as it is and follows those ids out of it at the first query."""
    words = node_bytes(metric, dims) // 4
    data = np.fromfile(path, dtype=np.int32).reshape(-1, words)
    first = CHILDREN_WORD[metric]
    data[n_items:, first : first + 2] = value
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(data.tobytes())
    assert path.stat().st_size == size
