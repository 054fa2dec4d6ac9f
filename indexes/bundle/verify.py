"""The checks a bundle passes before anything reads it, and `segue verify`.

`open_bundle` runs every check below on the files the manifest lists, so a damaged bundle is
refused with the file and the problem named (BundleError) rather than read out of bounds later;
`verify` adds the checksums of every file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from indexes.bundle import layout
from indexes.bundle.errors import BundleError
from indexes.bundle.layout import FileEntry, IndexEntry
from indexes.bundle.metrics import CHILDREN_WORD, METRICS, node_bytes

if TYPE_CHECKING:
    from indexes.bundle.read import Bundle

MAX_DIMS = 4096
# nodes of an Annoy file checked at a time (bounded memory whatever the index's size)
_TREE_CHUNK = 1 << 15


def verify(path: Path | str, *, signing_key: bytes | None = None) -> Bundle:
    """`segue verify`: every check of `open_bundle`, with checksums and the structure of every
    Annoy index, and the manifest's seal (signed with `signing_key` when given). What a worker
    checks before it maps a new version (`indexes.bundle.verified`). The caller closes it."""
    from indexes.bundle.read import open_bundle  # read.py runs the checks of this module

    return open_bundle(path, verify_checksums=True, signing_key=signing_key, check_trees=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_file(path: Path, entry: FileEntry, *, verify_checksums: bool) -> None:
    """A listed file is there with its size (and its sha256)."""
    if not path.is_file():
        raise BundleError(f"{path}: missing")
    size = path.stat().st_size
    if size != entry.size:
        what = "truncated" if size < entry.size else "size mismatch"
        raise BundleError(f"{path}: {what}: {size} bytes, manifest says {entry.size}")
    if verify_checksums and sha256_file(path) != entry.sha256:
        raise BundleError(f"{path}: checksum mismatch (sha256 differs from the manifest): corrupt")


def check_listed(directory: Path, name: str, files: dict[str, FileEntry]) -> None:
    if name not in files:
        raise BundleError(f"{directory / layout.MANIFEST}: does not list {name}")


def check_vector(path: Path, arr: NDArray[Any], *, kind: str, length: int | None) -> None:
    """A 1-d array of a dtype kind ("i", "f", "S") and, where given, a length."""
    if arr.dtype.kind not in kind or arr.ndim != 1:
        raise BundleError(
            f"{path}: expected a 1-d array of kind {kind!r}, got {arr.dtype} {arr.shape}"
        )
    if length is not None and len(arr) != length:
        raise BundleError(f"{path}: expected {length} entries, found {len(arr)}")


def check_rows(values: NDArray[Any], upper: int, path: Path, *, what: str) -> None:
    """Every value is a row in 0..upper-1 (a bad row would be an out-of-bounds read later)."""
    if len(values) and (values.min() < 0 or values.max() >= upper):
        raise BundleError(f"{path}: {what} out of range")


def check_offsets(path: Path, offsets: NDArray[Any], *, blob: str, blob_size: int) -> None:
    if offsets[0] != 0 or offsets[-1] != blob_size or (np.diff(offsets) < 0).any():
        raise BundleError(f"{path}: offsets do not fit {blob}")


def check_indptr(path: Path, indptr: NDArray[Any]) -> None:
    if indptr[0] != 0 or (np.diff(indptr) < 0).any():
        raise BundleError(f"{path}: not a valid row pointer")


def check_finite(path: Path, values: NDArray[Any], *, non_negative: bool = False) -> None:
    if not len(values):
        return
    if not (np.isfinite(values).all() and (not non_negative or values.min() >= 0)):
        raise BundleError(f"{path}: not finite" + (" and >= 0" if non_negative else ""))


def check_matrix(path: Path, m: NDArray[Any], *, rows: int, dims: int) -> None:
    if m.dtype != np.float32 or m.shape != (rows, dims):
        raise BundleError(f"{path}: expected float32 {(rows, dims)}, got {m.dtype} {m.shape}")


def check_index_entry(path: Path, entry: IndexEntry) -> None:
    """An index entry names an entity and a metric this segue knows, and sane dims."""
    if entry.entity not in layout.ENTITIES or entry.metric not in METRICS:
        raise BundleError(f"{path}: unknown entity {entry.entity!r} or metric {entry.metric!r}")
    if not 1 <= entry.dims <= MAX_DIMS:
        raise BundleError(f"{path}: bad dims {entry.dims!r}")


def check_slots(path: Path, slots: NDArray[Any], *, n_items: int) -> None:
    if len(slots) and slots.max() >= n_items:
        raise BundleError(f"{path}: slots out of range")


def check_annoy_size(path: Path, entry: IndexEntry) -> None:
    """The file's size fits the entry's dims, metric, items and trees before Annoy maps it."""
    node = node_bytes(entry.metric, entry.dims)
    size = path.stat().st_size
    if entry.n_items == 0:
        raise BundleError(f"{path}: index has no items")
    if size % node != 0:
        raise BundleError(
            f"{path}: {size} bytes is not a whole number of {entry.dims}-dim {entry.metric} nodes "
            f"({node} bytes): wrong dims or a truncated file"
        )
    if size // node < entry.n_items + entry.n_trees:
        raise BundleError(
            f"{path}: {size // node} nodes cannot hold {entry.n_items} items and {entry.n_trees} trees"
        )


def check_annoy_counts(path: Path, index: Any, entry: IndexEntry) -> None:
    found_items, found_trees = index.get_n_items(), index.get_n_trees()
    if found_items != entry.n_items or found_trees != entry.n_trees:
        raise BundleError(
            f"{path}: has {found_items} items and {found_trees} trees, "
            f"manifest says {entry.n_items} and {entry.n_trees}"
        )


def check_annoy_vectors(path: Path, vectors: NDArray[np.float32], index: Any) -> None:
    """The vectors read from the file's nodes are Annoy's own (first and last item): the node
    layout (NODE_HEADER_BYTES, then dims float32) is the one this code assumes."""
    for probe in {0, len(vectors) - 1}:
        if not np.allclose(vectors[probe], index.get_item_vector(probe), rtol=0, atol=0):
            raise BundleError(
                f"{path}: item {probe} does not match Annoy's own vector: unknown layout"
            )


def check_index_checksums(
    directory: Path, indexes: list[IndexEntry], files: dict[str, FileEntry]
) -> None:
    """An index entry's own sha256 (when it has one) is the one its file is listed with."""
    for entry in indexes:
        listed = files.get(entry.files.index)
        if entry.sha256 is not None and (listed is None or listed.sha256 != entry.sha256):
            raise BundleError(
                f"{directory / layout.MANIFEST}: the sha256 of index {entry.files.index} differs "
                "from its files entry"
            )


def check_annoy_tree(path: Path, entry: IndexEntry) -> None:
    """Every node of an Annoy file is one a query can follow safely, checked before Annoy maps
    it: Annoy trusts the child ids in its nodes, and one out of the file is a segfault.

    The node layout (annoylib.h): `n_descendants`, then (after a float for some metrics) the
    two children of a split node, or, when `n_descendants` <= K (the words left in the node),
    the item ids of a leaf in the same place. Items are nodes 0..n_items-1 (n_descendants 1).
    Annoy writes a split node after its children, so a child's id is below its parent's: a
    query descends, never loops."""
    words = node_bytes(entry.metric, entry.dims) // 4
    child = CHILDREN_WORD[entry.metric]
    k = words - child  # ids a leaf node holds (Annoy's _K)
    nodes = np.memmap(path, dtype=np.int32, mode="r").reshape(-1, words)
    n_items = entry.n_items
    items = np.asarray(nodes[:n_items, 0])
    if (items != 1).any():
        bad = int(np.flatnonzero(items != 1)[0])
        raise BundleError(f"{path}: item node {bad} is not an item (n_descendants {items[bad]})")
    slots = np.arange(k)
    for start in range(n_items, len(nodes), _TREE_CHUNK):
        block = np.asarray(nodes[start : start + _TREE_CHUNK])
        ids = np.arange(start, start + len(block))
        desc = block[:, 0]
        if (desc < 1).any():
            bad = int(np.flatnonzero(desc < 1)[0])
            raise BundleError(f"{path}: node {start + bad} has n_descendants {desc[bad]}")
        leaf = desc <= k
        held = block[leaf, child:][slots < desc[leaf, None]]
        if len(held) and (held.min() < 0 or held.max() >= n_items):
            raise BundleError(f"{path}: a leaf node holds an item id outside 0..{n_items - 1}")
        children = block[~leaf, child : child + 2]
        if ((children < 0) | (children >= ids[~leaf, None])).any():
            raise BundleError(
                f"{path}: a split node has a child id outside the nodes written before it"
            )
