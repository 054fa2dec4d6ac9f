"""Writing a bundle: every file into a staging directory, recorded for the manifest, which is
written last and once.

Everything big is a .npy or .ann file that readers mmap, so the workers of a pod share one copy
and no per-process dict grows with the catalogue.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexes.bundle import layout
from indexes.bundle.layout import FileEntry, IndexEntry, Manifest, UserVectorsEntry
from indexes.bundle.neighbours import Neighbours
from indexes.bundle.seal import seal
from indexes.bundle.verify import sha256_file
from indexes.progress import Ticker, log

Texts = Sequence[str] | NDArray[np.str_]


class BundleWriter:
    """Writes the files of one bundle into a staging directory and records them for the manifest."""

    def __init__(self, staging: Path) -> None:
        self.dir = staging
        self.dir.mkdir(parents=True, exist_ok=False)
        self.files: dict[str, FileEntry] = {}

    def array(self, name: str, value: NDArray[Any]) -> str:
        """Saves a plain (non-object) array as `name` (.npy): 1-d, or 2-d for vectors."""
        if value.dtype == object:
            raise ValueError(f"{name}: object arrays cannot be mmapped")
        with open(self.dir / name, "wb") as f:
            np.save(f, np.ascontiguousarray(value), allow_pickle=False)
        return self._record(name)

    def strings(self, files: layout.StringFiles, values: Texts) -> None:
        """Saves strings as one UTF-8 blob and its offsets."""
        encoded = [str(v).encode("utf-8") for v in values]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        with open(self.dir / files.blob, "wb") as f:
            f.write(b"".join(encoded))
        self._record(files.blob)
        self.array(files.offsets, offsets)

    def ids(self, prefix: str, ids: Texts) -> None:
        """Saves external ids (fixed-width UTF-8 bytes) and their sort order for lookups."""
        encoded = np.asarray([str(i).encode("utf-8") for i in ids], dtype=bytes)
        if len(encoded) and encoded.dtype.itemsize == 0:
            encoded = encoded.astype("S1")
        if len(np.unique(encoded)) != len(encoded):
            raise ValueError(f"{prefix}: ids are not unique")
        self.array(layout.ids(prefix), encoded)
        self.array(layout.ids_order(prefix), np.argsort(encoded, kind="stable").astype(np.int64))

    def names(self, entity: str, names: list[str]) -> None:
        """The names of an entity's rows, as given and case-folded (for search)."""
        self.strings(layout.names(entity), names)
        self.strings(layout.names_lower(entity), [n.casefold() for n in names])

    def track_artist(self, artist_rows: NDArray[np.integer[Any]]) -> None:
        self.array(layout.TRACK_ARTIST, artist_rows.astype(np.int32))

    def listeners(self, entity: str, values: NDArray[np.floating[Any]]) -> None:
        self.array(layout.listeners(entity), values.astype(np.float32))

    def popularity(self, entity: str, name: str, values: NDArray[np.floating[Any]]) -> None:
        self.array(layout.popularity(entity, name), values.astype(np.float32))

    def table(self, name: str, entity: str, table: Neighbours) -> None:
        self._csr(layout.table(name, entity), table)

    def users(self, ids: Texts, plays: Neighbours) -> None:
        """User ids and, per user, the tracks played and how often."""
        self.ids(layout.USERS, ids)
        self._csr(layout.user_plays(), plays)

    def user_vectors(self, model: str, vectors: NDArray[np.float32]) -> UserVectorsEntry:
        name = self.array(layout.user_vectors(model), vectors)
        return UserVectorsEntry(model=model, file=name, dims=int(vectors.shape[1]))

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
    ) -> IndexEntry:
        """Builds and saves the Annoy index of the masked rows; returns its manifest entry."""
        files = layout.ann(model, entity)
        rows = np.flatnonzero(mask).astype(np.int32)
        slots = np.full(len(mask), -1, dtype=np.int32)
        slots[rows] = np.arange(len(rows), dtype=np.int32)
        dims = int(vectors.shape[1])
        index = _annoy_of_rows(
            f"{model}.{entity}", vectors=vectors, rows=rows, metric=metric, seed=seed
        )
        log(f"  annoy {model}.{entity}: building {n_trees} trees over {len(rows)} items")
        index.build(n_trees, n_jobs=-1)
        index.save(str(self.dir / files.index))
        index.unload()
        self._record(files.index)
        self.array(files.rows, rows)
        self.array(files.slots, slots)
        return IndexEntry(
            model=model, entity=entity, dims=dims, metric=metric, n_items=len(rows),
            n_trees=_trees_a_reader_sees(self.dir / files.index, dims=dims, metric=metric),
            files=files,
        )  # fmt: skip

    def write_manifest(self, manifest: Manifest, *, signing_key: bytes | None = None) -> Manifest:
        """Writes manifest.json with the recorded files and index checksums, sealed (signed
        with `signing_key` when given: `indexes.bundle.seal`); returns it."""
        files = dict(sorted(self.files.items()))
        indexes = [replace(e, sha256=files[e.files.index].sha256) for e in manifest.indexes]
        manifest = replace(manifest, files=files, indexes=indexes, seal=None)
        sealed = seal(manifest.to_json(), key=signing_key)
        manifest = replace(manifest, seal=sealed["seal"])
        with open(self.dir / layout.MANIFEST, "w", encoding="utf-8") as f:
            json.dump(sealed, f, indent=2, sort_keys=False)
            f.write("\n")
        return manifest

    def _csr(self, files: layout.CsrFiles, table: Neighbours) -> None:
        self.array(files.indptr, table.indptr)
        self.array(files.indices, table.indices)
        self.array(files.values, table.scores)

    def _record(self, name: str) -> str:
        path = self.dir / name
        self.files[name] = FileEntry(size=path.stat().st_size, sha256=sha256_file(path))
        return name


def _annoy_of_rows(
    name: str, *, vectors: NDArray[np.float32], rows: NDArray[np.int32], metric: str, seed: int
) -> Any:
    """An unbuilt Annoy index holding vectors[rows], item i being rows[i]."""
    from annoy import AnnoyIndex

    index = AnnoyIndex(int(vectors.shape[1]), metric)  # type: ignore[arg-type]  # the caller's
    index.set_seed(seed)
    ticker = Ticker(f"annoy {name}: add", total=len(rows), unit="items")
    for slot, row in enumerate(rows.tolist()):
        index.add_item(slot, vectors[row])
        if slot % 10000 == 9999:
            ticker.add(10000)
    return index


def _trees_a_reader_sees(path: Path, *, dims: int, metric: str) -> int:
    """The tree count of a saved index as `load()` reports it: on a few dozen items Annoy counts
    more roots than were built (every node spanning all items), and the manifest records what a
    reader will check."""
    from annoy import AnnoyIndex

    index = AnnoyIndex(dims, metric)  # type: ignore[arg-type]
    index.load(str(path), prefault=False)
    try:
        return int(index.get_n_trees())
    finally:
        index.unload()
