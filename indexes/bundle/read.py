"""Reading a bundle: `open_bundle` checks it (`indexes.bundle.verify`) and maps its files.

Everything big is mmapped, so the workers of a pod share one copy and no per-process dict grows
with the catalogue. This package imports only numpy, annoy and the standard library, so the
online service can read bundles without pulling in the training stack.
"""

from __future__ import annotations

import json
import mmap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexes.bundle import layout
from indexes.bundle.errors import BundleError, ManifestError
from indexes.bundle.layout import COOC, POPULARITY, AnnoyShape, FileEntry, IndexEntry, Manifest
from indexes.bundle.metrics import (
    NODE_HEADER_BYTES,
    node_bytes,
    similarity_of_distance,
    similarity_of_vectors,
)
from indexes.bundle.neighbours import Neighbours
from indexes.bundle.publish import resolve_current
from indexes.bundle.seal import check_seal
from indexes.bundle.verify import (
    check_annoy_counts,
    check_annoy_size,
    check_annoy_tree,
    check_annoy_vectors,
    check_file,
    check_finite,
    check_index_checksums,
    check_index_entry,
    check_indptr,
    check_listed,
    check_matrix,
    check_offsets,
    check_rows,
    check_slots,
    check_vector,
)

# called with (model, entity, seconds) after every ANN query, e.g. to export a metric
AnnObserver = Callable[[str, str, float], None]


class Strings:
    """Strings stored as a UTF-8 blob plus offsets, both mmapped."""

    def __init__(self, blob: bytes | mmap.mmap, offsets: NDArray[np.int64]) -> None:
        self.blob, self.offsets = blob, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.blob[a:b].decode("utf-8")

    def take(self, rows: NDArray[np.integer[Any]]) -> list[str]:
        """The strings of several rows: two gathers of offsets instead of 2 * len(rows) numpy
        scalar reads."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.offsets[rows].tolist(), self.offsets[rows + 1].tolist()
        blob = self.blob
        return [blob[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]

    def find(self, needle: bytes, *, limit: int) -> list[int]:
        """Rows whose string contains `needle`, in row order, at most `limit` of them.

        A C-level scan of the shared blob (`mmap.find`): nothing is copied per call."""
        rows: list[int] = []
        if not needle:
            return list(range(min(limit, len(self))))
        pos = self.blob.find(needle, 0)
        while pos >= 0 and len(rows) < limit:
            row = int(np.searchsorted(self.offsets, pos, side="right")) - 1
            end = int(self.offsets[row + 1])
            if pos + len(needle) <= end:
                rows.append(row)
                pos = self.blob.find(needle, end)
            else:  # the match runs into the next string
                pos = self.blob.find(needle, pos + 1)
        return rows


@dataclass(eq=False, repr=False, kw_only=True)
class IdMap:
    """External ids <-> rows: mmapped fixed-width ids and their sort order."""

    ids: NDArray[np.bytes_]
    order: NDArray[np.int64]

    def __post_init__(self) -> None:
        self._width = self.ids.dtype.itemsize
        # plain buffer views of the same mmapped arrays: indexing them gives Python bytes and
        # ints directly, much cheaper than a numpy scalar per step of the binary search
        # (loadtest/README.md)
        self._raw = np.ascontiguousarray(self.ids).view(np.uint8).data if len(self.ids) else None
        self._order = np.ascontiguousarray(self.order, dtype=np.int64).data

    def __len__(self) -> int:
        return len(self.ids)

    def row_of(self, external_id: str) -> int | None:
        """The row of an external id, or None: a binary search over the mmapped ids.

        Ids are fixed-width, NUL-padded bytes; a key padded the same way sorts like numpy's
        comparison of the unpadded ids (NUL is the smallest byte, and no id ends with one)."""
        key = external_id.encode("utf-8")
        w = self._width
        if len(key) > w or not key or key.endswith(b"\x00") or self._raw is None:
            return None
        key = key.ljust(w, b"\x00")
        raw, order = self._raw, self._order
        lo, hi = 0, len(order)
        while lo < hi:
            mid = (lo + hi) // 2
            r = order[mid]
            if raw[r * w : r * w + w].tobytes() < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(order):
            r = order[lo]
            if raw[r * w : r * w + w].tobytes() == key:
                return int(r)
        return None

    def id_of(self, row: int) -> str:
        return bytes(self.ids[row]).decode("utf-8")

    def ids_of(self, rows: NDArray[np.integer[Any]]) -> list[str]:
        """The external ids of several rows, in one gather."""
        return [b.decode("utf-8") for b in self.ids[np.asarray(rows, dtype=np.int64)].tolist()]


@dataclass(eq=False, repr=False, kw_only=True)
class Entities(IdMap):
    """The id map and metadata of tracks or artists."""

    names: Strings
    names_lower: Strings | None  # format 2
    listeners: NDArray[np.float32]
    artist: NDArray[np.int32] | None  # tracks: the artist row of each


@dataclass(eq=False, repr=False, kw_only=True)
class Users(IdMap):
    """User ids, each user's played tracks and the user vectors of some models."""

    played: Neighbours  # per user: the tracks played and how often
    vectors: dict[str, NDArray[np.float32]]

    def __post_init__(self) -> None:
        super().__post_init__()
        self.plays_indptr = self.played.indptr
        self.plays_indices = self.played.indices
        self.plays_counts = self.played.scores

    def plays(self, row: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """The tracks a user played and how often."""
        return self.played.row(row)


@dataclass
class AnnIndex(AnnoyShape):
    """One opened Annoy index with its row maps."""

    search_k: int
    index: Any  # annoy.AnnoyIndex
    rows: NDArray[np.int32]  # annoy item -> catalogue row
    slots: NDArray[np.int32]  # catalogue row -> annoy item or -1
    # told the seconds of every ANN query (`open_bundle(on_ann_query=...)`)
    observer: AnnObserver | None = None
    # the item vectors, a zero-copy view into the mmapped .ann file (one row per Annoy item)
    vectors: NDArray[np.float32] | None = None

    def neighbours(
        self, row: int, k: int, *, search_k: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """Catalogue rows of the k nearest items to `row` (itself excluded) and their distances."""
        if not 0 <= row < len(self.slots):
            raise IndexError(f"row {row} outside {self.entity} (0..{len(self.slots) - 1})")
        slot = int(self.slots[row])
        if slot < 0:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        sk = self.search_k if search_k is None else search_k
        start = time.perf_counter()
        items, dists = self.index.get_nns_by_item(slot, k + 1, search_k=sk, include_distances=True)
        self._observe(start)
        out_rows = self.rows[np.asarray(items, dtype=np.int64)]
        d = np.asarray(dists, dtype=np.float32)
        keep = out_rows != row
        return out_rows[keep][:k], d[keep][:k]

    def nearest_to_vector(
        self, vector: NDArray[np.floating[Any]], *, n: int, search_k: int | None = None
    ) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """Catalogue rows of the n items nearest to a query vector (e.g. a user's), best first,
        and their similarities (`similarity_of_distance`)."""
        query = np.asarray(vector, dtype=np.float32).tolist()
        sk = self.search_k if search_k is None else search_k
        start = time.perf_counter()
        slots, dists = self.index.get_nns_by_vector(query, n, search_k=sk, include_distances=True)
        self._observe(start)
        return self.rows[np.asarray(slots, dtype=np.int64)], self.similarity_of_distance(dists)

    def similarity_of_distance(self, dist: Any) -> NDArray[np.float32]:
        """Annoy's distances as similarities, larger = closer (`indexes.bundle.metrics`)."""
        return similarity_of_distance(self.metric, dist)

    def similarity(self, a: int, b: int) -> float:
        """Similarity of two catalogue rows (cosine for angular; 0.0 when either has no
        vector)."""
        sa, sb = int(self.slots[a]), int(self.slots[b])
        if sa < 0 or sb < 0:
            return 0.0
        return float(self.similarity_of_distance([self.index.get_distance(sa, sb)])[0])

    def similarities(self, a: int, rows: NDArray[np.int32]) -> NDArray[np.float32]:
        """Similarity of row `a` to each of `rows`, as `similarity` gives it, vectorised over the
        mapped vectors (0.0 where a vector is missing)."""
        out = np.zeros(len(rows), dtype=np.float32)
        sa = int(self.slots[a])
        if sa < 0 or len(rows) == 0:
            return out
        slots = np.asarray(self.slots[rows])
        ok = slots >= 0
        if self.vectors is None:
            out[ok] = [self.similarity(a, int(r)) for r in np.asarray(rows)[ok]]
            return out
        out[ok] = similarity_of_vectors(self.metric, self.vectors[sa], self.vectors[slots[ok]])
        return out

    def _observe(self, start: float) -> None:
        if self.observer is not None:
            self.observer(self.model, self.entity, time.perf_counter() - start)


class Bundle:
    """An opened, verified bundle. Close it to unmap the Annoy indexes."""

    def __init__(
        self, path: Path, manifest: Manifest, *, raw_manifest: dict[str, Any] | None = None
    ) -> None:
        self.path = path
        # the manifest, typed (what the loaders read), and its JSON as read (what the service
        # reads by key, until it reads the typed one)
        self.typed_manifest = manifest
        self.manifest: dict[str, Any] = manifest.to_json() if raw_manifest is None else raw_manifest
        self.version: str = manifest.bundle_version
        self.entities: dict[str, Entities] = {}
        self.indexes: dict[tuple[str, str], AnnIndex] = {}
        self.cooc: dict[str, Neighbours] = {}
        # the plain signals: neighbour tables (cooc first, then the manifest's "signals") and
        # per-item popularity arrays ("popularity" = listeners first), per entity, in order
        self.tables: dict[str, dict[str, Neighbours]] = {}
        self.popularity: dict[str, dict[str, NDArray[np.float32]]] = {}
        # (entity, table name) -> how the table's scores become a feature
        self.transforms: dict[tuple[str, str], str] = {}
        self.users: Users | None = None  # format 1 bundles have no users

    @property
    def tracks(self) -> Entities:
        return self.entities["tracks"]

    @property
    def artists(self) -> Entities:
        return self.entities["artists"]

    def models(self, entity: str) -> list[str]:
        return [m for (m, e) in self.indexes if e == entity]

    def ensemble(self, entity: str) -> dict[str, Any]:
        result: dict[str, Any] = self.manifest["ensemble"][entity]
        return result

    def close(self) -> None:
        for ann in self.indexes.values():
            ann.index.unload()
        self.indexes.clear()

    def __enter__(self) -> Bundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_bundle(
    path: Path | str,
    *,
    verify_checksums: bool = True,
    signing_key: bytes | None = None,
    check_trees: bool = False,
    on_ann_query: AnnObserver | None = None,
) -> Bundle:
    """Opens `path` (a bundle directory, or a root with a `current` link) after checking it.

    Checks the format version, that every file in the manifest exists with its size (and
    sha256 unless `verify_checksums` is False), that arrays have the dtypes and lengths the
    manifest promises, and that each Annoy file's size fits its dims and item count before Annoy
    ever maps it; the manifest's seal (`indexes.bundle.seal`, signed with `signing_key` when
    given) and, with `check_trees`, every node of every Annoy index (`check_annoy_tree`: a read
    of each whole index; the service does it once per host, `indexes.bundle.verified`).
    Raises BundleError naming the file and the problem. `on_ann_query` is told
    the model, entity and seconds of every ANN query of the bundle's indexes.
    """
    root = Path(path)
    for attempt in range(3):
        directory = resolve_current(root)
        try:
            return _open_directory(
                directory, verify_checksums=verify_checksums, signing_key=signing_key,
                check_trees=check_trees, on_ann_query=on_ann_query,
            )  # fmt: skip
        except BundleError:
            # `current` moved on and the old version was pruned while we were opening it:
            # open the new current instead
            if attempt == 2 or directory == root or resolve_current(root) == directory:
                raise
    raise AssertionError("unreachable")


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest's JSON, checked to have a manifest's shape (BundleError otherwise)."""
    return _read_manifest(directory)[0]


def read_typed_manifest(directory: Path) -> Manifest:
    return _read_manifest(directory)[1]


def _read_manifest(directory: Path) -> tuple[dict[str, Any], Manifest]:
    path = directory / layout.MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: unreadable ({e})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: expected a JSON object")
    try:
        return raw, Manifest.from_json(raw)
    except ManifestError as e:
        raise BundleError(f"{path}: {e}") from None


def _open_directory(
    directory: Path, *, verify_checksums: bool, signing_key: bytes | None, check_trees: bool,
    on_ann_query: AnnObserver | None,
) -> Bundle:  # fmt: skip
    raw, manifest = _read_manifest(directory)
    check_seal(directory, raw, key=signing_key)
    check_index_checksums(directory, manifest.indexes, manifest.files)
    for name, listed in manifest.files.items():
        check_file(directory / name, listed, verify_checksums=verify_checksums)
    bundle = Bundle(directory, manifest, raw_manifest=raw)
    files = _Files(directory, manifest.files)
    try:
        _open_entities(bundle, files)
        _open_tables(bundle, files)
        for entry in manifest.indexes:
            bundle.indexes[(entry.model, entry.entity)] = _open_index(
                files, entry, n_rows=manifest.entities.get(entry.entity, 0),
                observer=on_ann_query, check_tree=check_trees,
            )  # fmt: skip
        _open_users(bundle, files)
    except OSError as e:
        bundle.close()
        raise BundleError(f"{directory}: {e}") from None
    except BundleError:
        bundle.close()
        raise
    return bundle


class _Files:
    """The files of one bundle directory that its manifest lists, mapped after their checks."""

    def __init__(self, directory: Path, listed: dict[str, FileEntry]) -> None:
        self.directory, self.listed = directory, listed

    def path(self, name: str) -> Path:
        return self.directory / name

    def mapped(self, name: str) -> NDArray[Any]:
        """A listed .npy file, mmapped."""
        check_listed(self.directory, name, self.listed)
        try:
            return _plain(np.load(self.path(name), mmap_mode="r", allow_pickle=False))
        except (ValueError, OSError) as e:
            raise BundleError(f"{self.path(name)}: not a readable .npy file ({e})") from None

    def vector(self, name: str, *, kind: str, length: int | None) -> NDArray[Any]:
        arr = self.mapped(name)
        check_vector(self.path(name), arr, kind=kind, length=length)
        return arr

    def row_vector(self, name: str, *, length: int | None, upper: int, what: str) -> NDArray[Any]:
        """Integer rows, each in 0..upper-1."""
        arr = self.vector(name, kind="i", length=length)
        check_rows(arr, upper, self.path(name), what=what)
        return arr

    def strings(self, files: layout.StringFiles, *, n: int) -> Strings:
        offsets = self.vector(files.offsets, kind="i", length=n + 1)
        check_listed(self.directory, files.blob, self.listed)
        blob_size = self.path(files.blob).stat().st_size
        check_offsets(self.path(files.offsets), offsets, blob=files.blob, blob_size=blob_size)
        blob: bytes | mmap.mmap = b""
        if blob_size:
            with open(self.path(files.blob), "rb") as f:
                blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return Strings(blob, offsets)

    def id_map(self, prefix: str, *, n: int) -> tuple[NDArray[Any], NDArray[Any]]:
        """The ids of `prefix` and their sort order."""
        ids = self.vector(layout.ids(prefix), kind="S", length=n)
        order = self.row_vector(layout.ids_order(prefix), length=n, upper=n, what="rows")
        return ids, order

    def csr(self, files: layout.CsrFiles, *, n_rows: int, n_cols: int, what: str) -> Neighbours:
        """A table of n_rows rows whose entries are rows in 0..n_cols-1."""
        indptr = self.vector(files.indptr, kind="i", length=n_rows + 1)
        check_indptr(self.path(files.indptr), indptr)
        nnz = int(indptr[-1])
        indices = self.vector(files.indices, kind="i", length=nnz)
        values = self.vector(files.values, kind="f", length=nnz)
        check_rows(indices, n_cols, self.path(files.indices), what=what)
        return Neighbours(indptr=indptr, indices=indices, scores=values)


def _plain(arr: NDArray[Any]) -> NDArray[Any]:
    """A plain ndarray view of an np.memmap: the same mapped pages (the view holds the map
    open), without the subclass's Python-level __getitem__ and __array_finalize__ on every
    index operation, a measurable share of a cheap request's time (loadtest/README.md)."""
    return arr.view(np.ndarray)


def _open_entities(bundle: Bundle, files: _Files) -> None:
    m = bundle.typed_manifest
    for entity in layout.ENTITIES:
        n = m.entities[entity]
        ids, order = files.id_map(entity, n=n)
        artist = None
        if entity == "tracks":
            artist = files.row_vector(
                layout.TRACK_ARTIST, length=n, upper=m.entities["artists"], what="artist rows"
            )
        bundle.entities[entity] = Entities(
            ids=ids,
            order=order,
            names=files.strings(layout.names(entity), n=n),
            names_lower=files.strings(layout.names_lower(entity), n=n) if m.has_users else None,
            listeners=files.vector(layout.listeners(entity), kind="f", length=n),
            artist=artist,
        )


def _open_tables(bundle: Bundle, files: _Files) -> None:
    """The neighbour tables and popularity arrays: cooc and listeners, then the signals."""
    m = bundle.typed_manifest
    for entity in layout.ENTITIES:
        n = m.entities[entity]
        cooc = files.csr(layout.table(COOC, entity), n_rows=n, n_cols=n, what="rows")
        bundle.cooc[entity] = cooc
        bundle.tables[entity] = {COOC: cooc}
        bundle.popularity[entity] = {POPULARITY: bundle.entities[entity].listeners}
    for entity, spec in m.signals.items():
        n = m.entities[entity]
        for name, table in spec.tables.items():
            csr_files = layout.table(name, entity)
            nb = files.csr(csr_files, n_rows=n, n_cols=n, what="rows")
            check_finite(files.path(csr_files.values), nb.scores, non_negative=True)
            bundle.tables[entity][name] = nb
            bundle.transforms[(entity, name)] = table.transform
        for name in spec.popularity:
            file = layout.popularity(entity, name)
            values = files.vector(file, kind="f", length=n)
            check_finite(files.path(file), values)
            bundle.popularity[entity][name] = values


def _open_index(
    files: _Files, entry: IndexEntry, *, n_rows: int, observer: AnnObserver | None,
    check_tree: bool,
) -> AnnIndex:  # fmt: skip
    """One Annoy index, mapped once its entry, row maps and file size are checked."""
    path = files.path(entry.files.index)
    check_index_entry(path, entry)
    check_listed(files.directory, entry.files.index, files.listed)
    rows = files.row_vector(entry.files.rows, length=entry.n_items, upper=n_rows, what="rows")
    slots = files.vector(entry.files.slots, kind="i", length=n_rows)
    check_slots(files.path(entry.files.slots), slots, n_items=entry.n_items)
    check_annoy_size(path, entry)
    if check_tree:
        check_annoy_tree(path, entry)
    index = _load_annoy(path, entry)
    try:
        vectors = _annoy_vectors(path, index, entry)
    except BundleError:
        index.unload()
        raise
    return AnnIndex(
        model=entry.model, entity=entry.entity, dims=entry.dims, metric=entry.metric,
        n_items=entry.n_items, n_trees=entry.n_trees, search_k=entry.search_k, index=index,
        rows=rows, slots=slots, vectors=vectors, observer=observer,
    )  # fmt: skip


def _load_annoy(path: Path, entry: IndexEntry) -> Any:
    from annoy import AnnoyIndex

    index = AnnoyIndex(entry.dims, entry.metric)  # type: ignore[arg-type]  # checked
    try:
        index.load(str(path), prefault=False)
    except OSError as e:
        raise BundleError(f"{path}: Annoy could not load it ({e})") from None
    try:
        check_annoy_counts(path, index, entry)
    except BundleError:
        index.unload()
        raise
    return index


def _annoy_vectors(path: Path, index: Any, entry: IndexEntry) -> NDArray[np.float32]:
    """The item vectors inside an Annoy file: node i starts at i * node bytes and holds its
    header (NODE_HEADER_BYTES), then dims float32. Checked against Annoy itself."""
    raw = _plain(np.memmap(path, dtype=np.float32, mode="r"))
    table = raw.reshape(-1, node_bytes(entry.metric, entry.dims) // 4)
    start = NODE_HEADER_BYTES[entry.metric] // 4
    vectors = table[: entry.n_items, start : start + entry.dims]
    check_annoy_vectors(path, vectors, index)
    return vectors


def _open_users(bundle: Bundle, files: _Files) -> None:
    m = bundle.typed_manifest
    if not m.has_users:
        return
    n = m.entities[layout.USERS]
    ids, order = files.id_map(layout.USERS, n=n)
    played = files.csr(
        layout.user_plays(), n_rows=n, n_cols=m.entities["tracks"], what="track rows"
    )
    vectors: dict[str, NDArray[np.float32]] = {}
    for entry in m.user_vectors:
        matrix = files.mapped(entry.file)
        check_matrix(files.path(entry.file), matrix, rows=n, dims=entry.dims)
        track_index = bundle.indexes.get((entry.model, "tracks"))
        if track_index is not None and track_index.dims != entry.dims:
            raise BundleError(
                f"{files.path(entry.file)}: {entry.dims} dims, but the {entry.model} track "
                "index has others"
            )
        vectors[entry.model] = matrix
    bundle.users = Users(ids=ids, order=order, played=played, vectors=vectors)
