"""The bundle format in one place: write, publish, open, verify.

A bundle is one immutable directory `<root>/<version>/`:

    manifest.json                      format and bundle version, source summary, every file with
                                       its size and sha256, every index, the ensemble weights
    tracks.ids.npy / artists.ids.npy   external ids, fixed-width UTF-8 bytes, in row order
    tracks.ids_order.npy / ...         the argsort of the ids: lookup by id is a binary search
    tracks.names.bin + .offsets.npy    names as one UTF-8 blob with int64 offsets
    tracks.names_lower.bin + ...       the same, case-folded, for case-insensitive search (format 2)
    tracks.artist.npy                  artist row of each track
    tracks.listeners.npy / artists...  popularity (listeners per item)
    <model>.<entity>.ann               one Annoy index per (model, entity)
    <model>.<entity>.rows.npy          Annoy item -> catalogue row
    <model>.<entity>.slots.npy         catalogue row -> Annoy item, -1 where the item has no vector
    cooc.<entity>.{indptr,indices,scores}.npy   top-N co-occurrence neighbours per item
    users.ids.npy / users.ids_order.npy          user ids (format 2)
    users.plays.{indptr,indices,counts}.npy      each user's played tracks, CSR (format 2)
    <model>.users.npy                  user vectors (n_users x dims float32) of models that have them
    <table>.<entity>.{indptr,indices,scores}.npy  signal tables listed in the manifest's
                                       "signals" (format 3): cooc_count, trans, trans_recent
    <entity>.<signal>.npy              per-item signals listed there: recent_<h>d popularity

Everything big is a .npy or .ann file that readers mmap, so the workers of a pod share one copy
and no per-process dict grows with the catalogue. This module imports only numpy, annoy and the standard library, so the
online service can read bundles without pulling in the training stack.

Publishing writes into a staging directory beside the bundles, fsyncs, renames it to
`<root>/<version>` and then atomically replaces the `current` symlink. A published file is never
written again: a reader that mmapped the old bundle keeps working while a new one is published.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexes.progress import Ticker, log

FORMAT_VERSION = 3
# 2 added users (ids, plays, ALS user vectors) and lowercase names; 3 added the plain signals
# (co-occurrence counts, transitions, recency-weighted popularity) and the data's time span
SUPPORTED_FORMATS = (1, 2, 3)
ENTITIES = ("tracks", "artists")
CURRENT = "current"
MANIFEST = "manifest.json"
_SIGNAL_NAME = re.compile(r"[a-z][a-z0-9_.]{0,40}")  # recent_0.5d
_BUILT_IN = ("cooc", "popularity")  # always there; a signal of the manifest may not replace them
# bytes per Annoy node for f dims (annoylib.h: n_descendants + children[2] (+ one float))
_ANNOY_NODE_EXTRA = {"angular": 12, "euclidean": 16, "manhattan": 16, "dot": 16}


class BundleError(Exception):
    """A bundle is missing, corrupt, truncated or does not match its manifest."""


# ---------------------------------------------------------------------------------------------
# writing


class BundleWriter:
    """Writes the files of one bundle into a staging directory and records them for the manifest."""

    def __init__(self, staging: Path) -> None:
        self.dir = staging
        self.dir.mkdir(parents=True, exist_ok=False)
        self.files: dict[str, dict[str, Any]] = {}

    def array(self, name: str, value: NDArray[Any]) -> str:
        """Saves a plain (non-object) array as `name` (.npy): 1-d, or 2-d for vectors."""
        if value.dtype == object:
            raise ValueError(f"{name}: object arrays cannot be mmapped")
        path = self.dir / name
        with open(path, "wb") as f:
            np.save(f, np.ascontiguousarray(value), allow_pickle=False)
        return self._record(name)

    def strings(self, prefix: str, values: Sequence[str] | NDArray[np.str_]) -> None:
        """Saves strings as `<prefix>.bin` (UTF-8 blob) and `<prefix>.offsets.npy`."""
        encoded = [str(v).encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        with open(self.dir / f"{prefix}.bin", "wb") as f:
            f.write(b"".join(encoded))
        self._record(f"{prefix}.bin")
        self.array(f"{prefix}.offsets.npy", offsets)

    def ids(self, entity: str, ids: Sequence[str] | NDArray[np.str_]) -> None:
        """Saves external ids (fixed-width UTF-8 bytes) and their sort order for lookups."""
        encoded = np.asarray([str(i).encode("utf-8") for i in ids], dtype=bytes)
        if len(encoded) and encoded.dtype.itemsize == 0:
            encoded = encoded.astype("S1")
        if len(np.unique(encoded)) != len(encoded):
            raise ValueError(f"{entity}: ids are not unique")
        self.array(f"{entity}.ids.npy", encoded)
        self.array(f"{entity}.ids_order.npy", np.argsort(encoded, kind="stable").astype(np.int64))

    def annoy(
        self,
        *,
        model: str,
        entity: str,
        vectors: NDArray[np.float32],
        mask: NDArray[np.bool_],
        metric: str,
        n_trees: int,
        seed: int,
    ) -> dict[str, Any]:
        """Builds and saves the Annoy index of the masked rows; returns its manifest entry."""
        from annoy import AnnoyIndex

        rows = np.flatnonzero(mask).astype(np.int32)
        slots = np.full(len(mask), -1, dtype=np.int32)
        slots[rows] = np.arange(len(rows), dtype=np.int32)
        dims = int(vectors.shape[1])
        index = AnnoyIndex(dims, metric)  # type: ignore[arg-type]  # checked by the caller
        index.set_seed(seed)
        ticker = Ticker(f"annoy {model}.{entity}: add", total=len(rows), unit="items")
        for slot, row in enumerate(rows.tolist()):
            index.add_item(slot, vectors[row])
            if slot % 10000 == 9999:
                ticker.add(10000)
        log(f"  annoy {model}.{entity}: building {n_trees} trees over {len(rows)} items")
        index.build(n_trees, n_jobs=-1)
        stem = f"{model}.{entity}"
        index.save(str(self.dir / f"{stem}.ann"))
        index.unload()
        # the manifest records the tree count a reader sees: on a few dozen items Annoy's
        # load() counts more roots than were built (every node spanning all items)
        index.load(str(self.dir / f"{stem}.ann"), prefault=False)
        loaded_trees = index.get_n_trees()
        index.unload()
        self._record(f"{stem}.ann")
        self.array(f"{stem}.rows.npy", rows)
        self.array(f"{stem}.slots.npy", slots)
        return {
            "model": model,
            "entity": entity,
            "dims": dims,
            "metric": metric,
            "n_items": len(rows),
            "n_trees": loaded_trees,
            "file": f"{stem}.ann",
            "rows": f"{stem}.rows.npy",
            "slots": f"{stem}.slots.npy",
        }

    def _record(self, name: str) -> str:
        self.files[name] = {
            "size": (self.dir / name).stat().st_size,
            "sha256": sha256_file(self.dir / name),
        }
        return name

    def write_manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Writes manifest.json with the recorded files and index checksums; returns it."""
        manifest = {**manifest, "files": dict(sorted(self.files.items()))}
        for entry in manifest.get("indexes", []):
            entry["sha256"] = self.files[entry["file"]]["sha256"]
        with open(self.dir / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, sort_keys=False)
            f.write("\n")
        return manifest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def new_version(*, seed_text: str) -> str:
    """A sortable, unique bundle version: UTC time plus a short hash."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    digest = hashlib.sha256(f"{seed_text}{time.time_ns()}{os.getpid()}".encode()).hexdigest()[:8]
    return f"{stamp}-{digest}"


def staging_dir(root: Path, version: str) -> Path:
    return root / f".staging-{version}"


def publish(
    *, staging: Path, root: Path, version: str, keep: int = 3, make_current: bool = True
) -> Path:
    """Makes a staged bundle durable and (by default) current; returns its final directory.

    fsync every file and the directory and rename staging -> <root>/<version>; then
    `set_current`. With make_current=False the version waits beside `current` (e.g. to be
    precomputed into the store first) until `set_current` publishes it.
    """
    final = root / version
    if final.exists():
        raise BundleError(f"{final}: a bundle with this version already exists; not overwriting it")
    for path in staging.iterdir():
        _fsync_file(path)
    _fsync_dir(staging)
    os.rename(staging, final)
    _fsync_dir(root)
    if make_current:
        set_current(root=root, version=version, keep=keep)
    return final


def set_current(*, root: Path, version: str, keep: int = 3) -> Path:
    """Points `<root>/current` at a stored version: a temporary symlink renamed over `current`
    (atomic on POSIX). Old versions beyond `keep` are removed; unlinking a file that another
    process has mmapped is safe (the inode lives on until unmapped), overwriting or truncating
    it would not be, and is never done."""
    final = root / version
    if version.startswith(".") or "/" in version or not (final / MANIFEST).is_file():
        raise BundleError(f"{final}: no bundle with version {version!r} here")
    tmp_link = root / f".{CURRENT}.{version}.tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(version, tmp_link)
    os.replace(tmp_link, root / CURRENT)
    _fsync_dir(root)
    prune(root, keep=keep)
    return final


def prune(root: Path, *, keep: int) -> list[str]:
    """Removes all but the newest `keep` published versions (never the current one)."""
    current = resolve_current(root).name if (root / CURRENT).exists() else None
    versions = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    versions = [v for v in versions if (root / v / MANIFEST).exists()]
    removed = []
    for v in versions[: max(0, len(versions) - keep)]:
        if v != current:
            shutil.rmtree(root / v)
            removed.append(v)
    return removed


def resolve_current(root: Path) -> Path:
    """The bundle directory that `<root>/current` points at (or `root` itself if it is a bundle)."""
    if (root / MANIFEST).exists():
        return root
    link = root / CURRENT
    if not link.exists():
        raise BundleError(f"{root}: no bundle here (neither {MANIFEST} nor a '{CURRENT}' link)")
    return link.resolve()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# reading


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


class IdMap:
    """External ids <-> rows: mmapped fixed-width ids and their sort order."""

    def __init__(self, *, ids: NDArray[np.bytes_], order: NDArray[np.int64]) -> None:
        self.ids, self.order = ids, order
        self._width = ids.dtype.itemsize
        # plain buffer views of the same mmapped arrays: indexing them gives Python bytes and
        # ints directly, ~10x cheaper than a numpy scalar per step of the binary search
        self._raw = np.ascontiguousarray(ids).view(np.uint8).data if len(ids) else None
        self._order = np.ascontiguousarray(order, dtype=np.int64).data

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


class Entities(IdMap):
    """The id map and metadata of tracks or artists."""

    def __init__(
        self,
        *,
        ids: NDArray[np.bytes_],
        order: NDArray[np.int64],
        names: Strings,
        names_lower: Strings | None,
        listeners: NDArray[np.float32],
        artist: NDArray[np.int32] | None,
    ) -> None:
        super().__init__(ids=ids, order=order)
        self.names, self.names_lower = names, names_lower
        self.listeners, self.artist = listeners, artist


class Users(IdMap):
    """User ids, each user's played tracks (CSR) and the user vectors of some models."""

    def __init__(
        self,
        *,
        ids: NDArray[np.bytes_],
        order: NDArray[np.int64],
        plays_indptr: NDArray[np.int64],
        plays_indices: NDArray[np.int32],
        plays_counts: NDArray[np.float32],
        vectors: dict[str, NDArray[np.float32]],
    ) -> None:
        super().__init__(ids=ids, order=order)
        self.plays_indptr, self.plays_indices, self.plays_counts = (
            plays_indptr,
            plays_indices,
            plays_counts,
        )
        self.vectors = vectors

    def plays(self, row: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        """The tracks a user played and how often."""
        a, b = int(self.plays_indptr[row]), int(self.plays_indptr[row + 1])
        return self.plays_indices[a:b], self.plays_counts[a:b]


@dataclass
class AnnIndex:
    """One opened Annoy index with its row maps."""

    model: str
    entity: str
    dims: int
    metric: str
    n_items: int
    n_trees: int
    search_k: int
    index: Any  # annoy.AnnoyIndex
    rows: NDArray[np.int32]  # annoy item -> catalogue row
    slots: NDArray[np.int32]  # catalogue row -> annoy item or -1
    # called with (model, entity, seconds) after every ANN query, e.g. to export a metric
    observer: Callable[[str, str, float], None] | None = None
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
        if self.observer is not None:
            self.observer(self.model, self.entity, time.perf_counter() - start)
        out_rows = self.rows[np.asarray(items, dtype=np.int64)]
        d = np.asarray(dists, dtype=np.float32)
        keep = out_rows != row
        return out_rows[keep][:k], d[keep][:k]

    def similarity_of_distance(self, dist: NDArray[np.float32]) -> NDArray[np.float32]:
        """Annoy's distances as similarities, larger = closer: cosine for angular (Annoy's
        angular distance is sqrt(2 - 2 cos)), the dot product itself for dot (Annoy reports it
        as the "distance"), and minus the distance for euclidean and manhattan."""
        d = np.asarray(dist, dtype=np.float32)
        if self.metric == "angular":
            return (1.0 - d * d / 2.0).astype(np.float32)
        if self.metric == "dot":
            return d
        return (-d).astype(np.float32)

    def similarity(self, a: int, b: int) -> float:
        """Similarity of two catalogue rows (cosine for angular; 0.0 when either has no
        vector)."""
        sa, sb = int(self.slots[a]), int(self.slots[b])
        if sa < 0 or sb < 0:
            return 0.0
        d = self.index.get_distance(sa, sb)
        return float(self.similarity_of_distance(np.asarray([d], dtype=np.float32))[0])

    def similarities(self, a: int, rows: NDArray[np.int32]) -> NDArray[np.float32]:
        """Cosine similarity of row `a` to each of `rows`, vectorised (0.0 where a vector is
        missing)."""
        out = np.zeros(len(rows), dtype=np.float32)
        sa = int(self.slots[a])
        if sa < 0 or len(rows) == 0:
            return out
        slots = np.asarray(self.slots[rows])
        ok = slots >= 0
        if self.vectors is None or self.metric != "angular":
            out[ok] = [self.similarity(a, int(r)) for r in np.asarray(rows)[ok]]
            return out
        q = np.asarray(self.vectors[sa], dtype=np.float32)
        m = np.asarray(self.vectors[slots[ok]], dtype=np.float32)
        norms = np.linalg.norm(m, axis=1) * float(np.linalg.norm(q))
        out[ok] = np.divide(m @ q, norms, out=np.zeros(len(m), dtype=np.float32), where=norms > 0)
        return out


@dataclass
class CoocNeighbours:
    indptr: NDArray[np.int64]
    indices: NDArray[np.int32]
    scores: NDArray[np.float32]

    def row(self, i: int) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.indices[a:b], self.scores[a:b]


class Bundle:
    """An opened, verified bundle. Close it to unmap the Annoy indexes."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.version: str = manifest["bundle_version"]
        self.entities: dict[str, Entities] = {}
        self.indexes: dict[tuple[str, str], AnnIndex] = {}
        self.cooc: dict[str, CoocNeighbours] = {}
        # the plain signals: neighbour tables (cooc first, then the manifest's "signals") and
        # per-item popularity arrays ("popularity" = listeners first), per entity, in order
        self.tables: dict[str, dict[str, CoocNeighbours]] = {}
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


def open_bundle(path: Path | str, *, verify_checksums: bool = True) -> Bundle:
    """Opens `path` (a bundle directory, or a root with a `current` link) after checking it.

    Checks the format version, that every file in the manifest exists with its size (and
    sha256 unless `verify_checksums` is False), that arrays have the dtypes and lengths the
    manifest promises, and that each Annoy file's size fits its dims and item count before Annoy
    ever maps it. Raises BundleError naming the file and the problem.
    """
    root = Path(path)
    for attempt in range(3):
        directory = resolve_current(root)
        try:
            return _open_directory(directory, verify_checksums=verify_checksums)
        except BundleError:
            # `current` moved on and the old version was pruned while we were opening it:
            # open the new current instead
            if attempt == 2 or directory == root or resolve_current(root) == directory:
                raise
    raise AssertionError("unreachable")


def _open_directory(directory: Path, *, verify_checksums: bool) -> Bundle:
    manifest = read_manifest(directory)
    files: Mapping[str, Mapping[str, Any]] = manifest["files"]
    for name, meta in files.items():
        _check_file(directory, name, meta, verify_checksums=verify_checksums)
    bundle = Bundle(directory, manifest)
    try:
        _open_entities(bundle, manifest)
        _open_cooc(bundle, manifest)
        _open_indexes(bundle, manifest)
        _open_users(bundle, manifest)
    except OSError as e:
        bundle.close()
        raise BundleError(f"{directory}: {e}") from None
    except BundleError:
        bundle.close()
        raise
    return bundle


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: unreadable ({e})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object")
    fmt = manifest.get("format_version")
    if fmt not in SUPPORTED_FORMATS:
        raise BundleError(
            f"{path}: format_version {fmt!r} is not supported (this segue reads {SUPPORTED_FORMATS})"
        )
    for key in ("bundle_version", "files", "entities", "indexes", "ensemble"):
        if key not in manifest:
            raise BundleError(f"{path}: missing key '{key}'")
    return manifest


def _check_file(
    directory: Path, name: str, meta: Mapping[str, Any], *, verify_checksums: bool
) -> None:
    if "/" in name or name.startswith("."):
        raise BundleError(f"{directory / MANIFEST}: bad file name {name!r}")
    path = directory / name
    if not path.is_file():
        raise BundleError(f"{path}: missing")
    size = path.stat().st_size
    if size != meta.get("size"):
        what = "truncated" if size < int(meta.get("size", 0)) else "size mismatch"
        raise BundleError(f"{path}: {what}: {size} bytes, manifest says {meta.get('size')}")
    if verify_checksums and sha256_file(path) != meta.get("sha256"):
        raise BundleError(f"{path}: checksum mismatch (sha256 differs from the manifest): corrupt")


def _plain(arr: NDArray[Any]) -> NDArray[Any]:
    """A plain ndarray view of an np.memmap: the same mapped pages (the view holds the map
    open), without the subclass's Python-level __getitem__ and __array_finalize__ on every
    index operation (a sixth of a cheap request's time)."""
    return arr.view(np.ndarray)


def _load(
    directory: Path, name: str, *, dtype_kind: str, length: int | None, files: Mapping[str, Any]
) -> NDArray[Any]:
    if name not in files:
        raise BundleError(f"{directory / MANIFEST}: does not list {name}")
    path = directory / name
    try:
        arr = _plain(np.load(path, mmap_mode="r", allow_pickle=False))
    except (ValueError, OSError) as e:
        raise BundleError(f"{path}: not a readable .npy file ({e})") from None
    if arr.dtype.kind not in dtype_kind or arr.ndim != 1:
        raise BundleError(
            f"{path}: expected a 1-d array of kind {dtype_kind!r}, got {arr.dtype} {arr.shape}"
        )
    if length is not None and len(arr) != length:
        raise BundleError(f"{path}: expected {length} entries, found {len(arr)}")
    return arr


def _open_entities(bundle: Bundle, manifest: dict[str, Any]) -> None:
    d, files = bundle.path, manifest["files"]
    counts = manifest["entities"]
    for entity in ENTITIES:
        n = _count(d, counts, entity)
        ids, order = _id_map(d, entity, n=n, files=files)
        names = _strings(d, f"{entity}.names", n=n, files=files)
        names_lower = None
        if manifest["format_version"] >= 2:
            names_lower = _strings(d, f"{entity}.names_lower", n=n, files=files)
        listeners = _load(d, f"{entity}.listeners.npy", dtype_kind="f", length=n, files=files)
        artist = None
        if entity == "tracks":
            artist = _load(d, "tracks.artist.npy", dtype_kind="i", length=n, files=files)
            _in_range(artist, counts.get("artists", 0), d / "tracks.artist.npy", what="artist rows")
        bundle.entities[entity] = Entities(
            ids=ids,
            order=order,
            names=names,
            names_lower=names_lower,
            listeners=listeners,
            artist=artist,
        )


def _strings(d: Path, prefix: str, *, n: int, files: Mapping[str, Any]) -> Strings:
    offsets = _load(d, f"{prefix}.offsets.npy", dtype_kind="i", length=n + 1, files=files)
    blob_path = d / f"{prefix}.bin"
    if blob_path.name not in files:
        raise BundleError(f"{d / MANIFEST}: does not list {blob_path.name}")
    blob_size = blob_path.stat().st_size
    if offsets[0] != 0 or offsets[-1] != blob_size or (np.diff(offsets) < 0).any():
        raise BundleError(f"{d / f'{prefix}.offsets.npy'}: offsets do not fit {blob_path.name}")
    blob: bytes | mmap.mmap = b""
    if blob_size:
        with open(blob_path, "rb") as f:
            blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return Strings(blob, offsets)


def _open_users(bundle: Bundle, manifest: dict[str, Any]) -> None:
    if manifest["format_version"] < 2:
        return
    d, files = bundle.path, manifest["files"]
    n = _count(d, manifest["entities"], "users")
    ids, order = _id_map(d, "users", n=n, files=files)
    indptr, indices, counts = _csr(
        d, "users.plays", "counts", n_rows=n, n_cols=manifest["entities"]["tracks"],
        what="track rows", files=files,
    )  # fmt: skip
    vectors: dict[str, NDArray[np.float32]] = {}
    for entry in manifest.get("user_vectors", []):
        model, file, dims = entry.get("model"), entry.get("file"), entry.get("dims")
        if file not in files:
            raise BundleError(f"{d / MANIFEST}: does not list {file}")
        try:
            m = _plain(np.load(d / file, mmap_mode="r", allow_pickle=False))
        except (ValueError, OSError) as e:
            raise BundleError(f"{d / file}: not a readable .npy file ({e})") from None
        if m.dtype != np.float32 or m.shape != (n, dims):
            raise BundleError(f"{d / file}: expected float32 {(n, dims)}, got {m.dtype} {m.shape}")
        if (model, "tracks") in bundle.indexes and bundle.indexes[(model, "tracks")].dims != dims:
            raise BundleError(f"{d / file}: {dims} dims, but the {model} track index has others")
        vectors[str(model)] = m
    bundle.users = Users(
        ids=ids,
        order=order,
        plays_indptr=indptr,
        plays_indices=indices,
        plays_counts=counts,
        vectors=vectors,
    )


def _count(d: Path, counts: Mapping[str, Any], entity: str) -> int:
    n = counts.get(entity)
    if not isinstance(n, int) or n < 0:
        raise BundleError(f"{d / MANIFEST}: entities.{entity} must be a count")
    return n


def _in_range(values: NDArray[Any], upper: int, path: Path, *, what: str) -> None:
    """Every value is a row in 0..upper-1 (a bad row would be an out-of-bounds read later)."""
    if len(values) and (values.min() < 0 or values.max() >= upper):
        raise BundleError(f"{path}: {what} out of range")


def _id_map(
    d: Path, prefix: str, *, n: int, files: Mapping[str, Any]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """`<prefix>.ids.npy` and its sort order `<prefix>.ids_order.npy`."""
    ids = _load(d, f"{prefix}.ids.npy", dtype_kind="S", length=n, files=files)
    order = _load(d, f"{prefix}.ids_order.npy", dtype_kind="i", length=n, files=files)
    _in_range(order, n, d / f"{prefix}.ids_order.npy", what="rows")
    return ids, order


def _csr(
    d: Path,
    prefix: str,
    values: str,
    *,
    n_rows: int,
    n_cols: int,
    what: str,
    files: Mapping[str, Any],
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """A CSR matrix stored as `<prefix>.indptr.npy`, `.indices.npy` and `.<values>.npy`."""
    indptr = _load(d, f"{prefix}.indptr.npy", dtype_kind="i", length=n_rows + 1, files=files)
    if indptr[0] != 0 or (np.diff(indptr) < 0).any():
        raise BundleError(f"{d / f'{prefix}.indptr.npy'}: not a valid row pointer")
    nnz = int(indptr[-1])
    indices = _load(d, f"{prefix}.indices.npy", dtype_kind="i", length=nnz, files=files)
    data = _load(d, f"{prefix}.{values}.npy", dtype_kind="f", length=nnz, files=files)
    _in_range(indices, n_cols, d / f"{prefix}.indices.npy", what=what)
    return indptr, indices, data


def _open_cooc(bundle: Bundle, manifest: dict[str, Any]) -> None:
    d, files = bundle.path, manifest["files"]
    for entity in ENTITIES:
        n = manifest["entities"][entity]
        indptr, indices, scores = _csr(
            d, f"cooc.{entity}", "scores", n_rows=n, n_cols=n, what="rows", files=files
        )
        bundle.cooc[entity] = CoocNeighbours(indptr=indptr, indices=indices, scores=scores)
        bundle.tables[entity] = {"cooc": bundle.cooc[entity]}
        bundle.popularity[entity] = {"popularity": bundle.entities[entity].listeners}
    signals = manifest.get("signals")
    signals = {} if signals is None else signals
    if not isinstance(signals, Mapping):
        raise BundleError(f"{d / MANIFEST}: signals must be an object")
    for entity, spec in signals.items():
        if entity not in ENTITIES or not isinstance(spec, Mapping):
            raise BundleError(f"{d / MANIFEST}: signals.{entity} is not an entity's signals")
        n = manifest["entities"][entity]
        tables = spec.get("tables", {})
        pops = spec.get("popularity", [])
        if not isinstance(tables, Mapping) or not isinstance(pops, list):
            raise BundleError(f"{d / MANIFEST}: signals.{entity} has malformed tables/popularity")
        for name, meta in tables.items():
            transform = meta.get("transform") if isinstance(meta, Mapping) else None
            if (
                not _SIGNAL_NAME.fullmatch(str(name))
                or name in _BUILT_IN
                or transform not in ("identity", "log1p")
            ):
                raise BundleError(f"{d / MANIFEST}: signals.{entity}.tables.{name} is malformed")
            indptr, indices, scores = _csr(
                d, f"{name}.{entity}", "scores", n_rows=n, n_cols=n, what="rows", files=files
            )
            if len(scores) and not (np.isfinite(scores).all() and scores.min() >= 0):
                raise BundleError(f"{d / f'{name}.{entity}.scores.npy'}: not finite and >= 0")
            bundle.tables[entity][name] = CoocNeighbours(
                indptr=indptr, indices=indices, scores=scores
            )
            bundle.transforms[(entity, str(name))] = str(transform)
        for name in pops:
            if not isinstance(name, str) or not _SIGNAL_NAME.fullmatch(name) or name in _BUILT_IN:
                raise BundleError(f"{d / MANIFEST}: signals.{entity}.popularity {name!r}")
            values = _load(d, f"{entity}.{name}.npy", dtype_kind="f", length=n, files=files)
            if len(values) and not np.isfinite(values).all():
                raise BundleError(f"{d / f'{entity}.{name}.npy'}: not finite")
            bundle.popularity[entity][str(name)] = values


def _open_indexes(bundle: Bundle, manifest: dict[str, Any]) -> None:
    from annoy import AnnoyIndex

    d, files = bundle.path, manifest["files"]
    for entry in manifest["indexes"]:
        try:
            model, entity, dims, metric = (
                entry["model"],
                entry["entity"],
                entry["dims"],
                entry["metric"],
            )
            n_items, n_trees, file = entry["n_items"], entry["n_trees"], entry["file"]
        except (KeyError, TypeError) as e:
            raise BundleError(f"{d / MANIFEST}: index entry {entry!r} lacks {e}") from None
        path = d / file
        if entity not in ENTITIES or metric not in _ANNOY_NODE_EXTRA:
            raise BundleError(f"{path}: unknown entity {entity!r} or metric {metric!r}")
        if not isinstance(dims, int) or not 1 <= dims <= 4096:
            raise BundleError(f"{path}: bad dims {dims!r}")
        if file not in files:
            raise BundleError(f"{d / MANIFEST}: does not list {file}")
        n_entity = manifest["entities"][entity]
        rows = _load(d, entry["rows"], dtype_kind="i", length=n_items, files=files)
        slots = _load(d, entry["slots"], dtype_kind="i", length=n_entity, files=files)
        _in_range(rows, n_entity, d / entry["rows"], what="rows")
        if n_entity and slots.max() >= n_items:
            raise BundleError(f"{d / entry['slots']}: slots out of range")
        node = 4 * dims + _ANNOY_NODE_EXTRA[metric]
        size = path.stat().st_size
        if n_items == 0:
            raise BundleError(f"{path}: index has no items")
        if size % node != 0:
            raise BundleError(
                f"{path}: {size} bytes is not a whole number of {dims}-dim {metric} nodes "
                f"({node} bytes): wrong dims or a truncated file"
            )
        if size // node < n_items + n_trees:
            raise BundleError(
                f"{path}: {size // node} nodes cannot hold {n_items} items and {n_trees} trees"
            )
        index = AnnoyIndex(dims, metric)
        try:
            index.load(str(path), prefault=False)
        except OSError as e:
            raise BundleError(f"{path}: Annoy could not load it ({e})") from None
        found_items, found_trees = index.get_n_items(), index.get_n_trees()
        if found_items != n_items or found_trees != n_trees:
            index.unload()
            raise BundleError(
                f"{path}: has {found_items} items and {found_trees} trees, "
                f"manifest says {n_items} and {n_trees}"
            )
        vectors = _annoy_vectors(path, index, dims=dims, metric=metric, n_items=n_items, node=node)
        bundle.indexes[(model, entity)] = AnnIndex(
            vectors=vectors,
            model=model,
            entity=entity,
            dims=dims,
            metric=metric,
            n_items=n_items,
            n_trees=n_trees,
            search_k=int(entry.get("search_k", -1)),
            index=index,
            rows=rows,
            slots=slots,
        )


def _annoy_vectors(
    path: Path, index: Any, *, dims: int, metric: str, n_items: int, node: int
) -> NDArray[np.float32]:
    """The item vectors inside an Annoy file: node i starts at i * node bytes and holds its
    header (_ANNOY_NODE_EXTRA bytes), then dims float32. Checked against Annoy itself."""
    raw = _plain(np.memmap(path, dtype=np.float32, mode="r"))
    table = raw.reshape(-1, node // 4)
    start = _ANNOY_NODE_EXTRA[metric] // 4
    vectors = table[:n_items, start : start + dims]
    for probe in {0, n_items - 1}:
        if not np.allclose(vectors[probe], index.get_item_vector(probe), rtol=0, atol=0):
            raise BundleError(
                f"{path}: item {probe} does not match Annoy's own vector: unknown layout"
            )
    return vectors


def verify(path: Path | str) -> Bundle:
    """`segue verify`: every check of `open_bundle`, with checksums. The caller closes it."""
    return open_bundle(path, verify_checksums=True)


def iter_versions(root: Path) -> Iterator[Path]:
    for p in sorted(root.iterdir()):
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists():
            yield p
