"""What each Annoy metric means, in one place: the bytes of its nodes, and how its distances
become similarities (larger = closer) and back.

Annoy reports, per metric: angular, sqrt(2 - 2 cos) (from the stored vectors' own norms, 2 where
either is zero); dot, the dot product itself; euclidean and manhattan, the distance. The
similarity is the cosine for angular, the dot product for dot and minus the distance for the
other two, so that every source ranks "larger first".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

# bytes of an Annoy node before its dims float32 (annoylib.h: n_descendants + children[2], and
# one more float for the metrics that keep one)
NODE_HEADER_BYTES = {"angular": 12, "euclidean": 16, "manhattan": 16, "dot": 16}
METRICS = tuple(NODE_HEADER_BYTES)
# the int32 word of a node where its children (or a leaf's item ids) start: after
# n_descendants, and after the hyperplane offset `a` for euclidean and manhattan
CHILDREN_WORD = {"angular": 1, "euclidean": 2, "manhattan": 2, "dot": 1}


def node_bytes(metric: str, dims: int) -> int:
    """The size of one node of a `dims`-dimensional index."""
    return 4 * dims + NODE_HEADER_BYTES[metric]


def similarity_of_distance(metric: str, distances: Any) -> NDArray[np.float32]:
    """Annoy's distances (as `get_nns_*` and `get_distance` report them) as similarities."""
    d = np.asarray(distances, dtype=np.float32)
    if metric == "angular":
        return (1.0 - d * d / 2.0).astype(np.float32)
    if metric == "dot":
        return d
    return (-d).astype(np.float32)


def cosine_to_angular(cosine: Any) -> NDArray[np.float64]:
    """The inverse for angular: Annoy's distance of two vectors from their cosine."""
    return np.sqrt(np.maximum(0.0, 2.0 - 2.0 * np.asarray(cosine, dtype=np.float64)))


def similarity_of_vectors(
    metric: str, query: NDArray[np.float32], vectors: NDArray[np.float32]
) -> NDArray[np.float32]:
    """The similarity of `query` to each row of `vectors`, computed as Annoy's metric defines it
    (what `similarity_of_distance` of Annoy's distance gives, up to float rounding)."""
    q = np.asarray(query, dtype=np.float32)
    m = np.asarray(vectors, dtype=np.float32)
    if metric == "angular":
        norms = np.linalg.norm(m, axis=1) * float(np.linalg.norm(q))
        return np.divide(m @ q, norms, out=np.zeros(len(m), dtype=np.float32), where=norms > 0)
    if metric == "dot":
        return (m @ q).astype(np.float32)
    if metric == "euclidean":
        return (-np.linalg.norm(m - q, axis=1)).astype(np.float32)
    return (-np.abs(m - q).sum(axis=1)).astype(np.float32)
