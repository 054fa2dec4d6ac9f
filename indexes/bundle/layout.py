"""Every name a bundle spells: its files, its directories and the keys of its manifest.

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

Beside the versions, `<root>/current` is a symlink to the published one and `.staging-<version>`
a bundle being written. `Manifest` is the typed manifest: `from_json` checks the shape of the
JSON (the files themselves are checked by `indexes.bundle.verify`), `to_json` gives it back with
the keys in the order they are written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from indexes.bundle.errors import ManifestError

FORMAT_VERSION = 3
# 2 added users (ids, plays, ALS user vectors) and lowercase names; 3 added the plain signals
# (co-occurrence counts, transitions, recency-weighted popularity) and the data's time span
SUPPORTED_FORMATS = (1, 2, 3)
ENTITIES = ("tracks", "artists")
USERS = "users"
CURRENT = "current"
MANIFEST = "manifest.json"

# the signals every bundle has, whatever its format: the co-occurrence table and the listeners
COOC = "cooc"
POPULARITY = "popularity"
# how a table's stored scores become a feature value
IDENTITY = "identity"
LOG1P = "log1p"
TRANSFORMS = (IDENTITY, LOG1P)
_SIGNAL_NAME = re.compile(r"[a-z][a-z0-9_.]{0,40}")  # recent_0.5d
_REQUIRED = ("bundle_version", "files", "entities", "indexes", "ensemble")


# ---------------------------------------------------------------------------------------------
# directories


def staging_name(version: str) -> str:
    """The directory a bundle is written into before it is published as `version`."""
    return f".staging-{version}"


def current_link_name(version: str) -> str:
    """The temporary symlink that is renamed over `current` to publish `version`."""
    return f".{CURRENT}.{version}.tmp"


def is_version_name(name: str) -> bool:
    """Whether a directory entry can be a published version (not staging, not a link's temp)."""
    return bool(name) and not name.startswith(".") and "/" not in name


# ---------------------------------------------------------------------------------------------
# files


@dataclass(frozen=True)
class CsrFiles:
    """A table "for each row, a list of (column, value)" stored as three arrays."""

    indptr: str
    indices: str
    values: str


@dataclass(frozen=True)
class StringFiles:
    """Strings stored as one UTF-8 blob and the int64 offsets of each string in it."""

    blob: str
    offsets: str


@dataclass(frozen=True)
class AnnFiles:
    """One Annoy index and its two row maps."""

    index: str
    rows: str
    slots: str


def ids(prefix: str) -> str:
    return f"{prefix}.ids.npy"


def ids_order(prefix: str) -> str:
    return f"{prefix}.ids_order.npy"


def strings(prefix: str) -> StringFiles:
    return StringFiles(blob=f"{prefix}.bin", offsets=f"{prefix}.offsets.npy")


def names(entity: str) -> StringFiles:
    return strings(f"{entity}.names")


def names_lower(entity: str) -> StringFiles:
    return strings(f"{entity}.names_lower")


TRACK_ARTIST = "tracks.artist.npy"


def listeners(entity: str) -> str:
    return f"{entity}.listeners.npy"


def popularity(entity: str, name: str) -> str:
    """A per-item signal of the manifest's "signals" (recent_7d, ...)."""
    return f"{entity}.{name}.npy"


def csr(prefix: str, values: str = "scores") -> CsrFiles:
    return CsrFiles(
        indptr=f"{prefix}.indptr.npy",
        indices=f"{prefix}.indices.npy",
        values=f"{prefix}.{values}.npy",
    )


def table(name: str, entity: str) -> CsrFiles:
    """A neighbour table: `cooc`, or one of the manifest's "signals"."""
    return csr(f"{name}.{entity}")


def user_plays() -> CsrFiles:
    return csr(f"{USERS}.plays", "counts")


def user_vectors(model: str) -> str:
    return f"{model}.{USERS}.npy"


def ann(model: str, entity: str) -> AnnFiles:
    stem = f"{model}.{entity}"
    return AnnFiles(index=f"{stem}.ann", rows=f"{stem}.rows.npy", slots=f"{stem}.slots.npy")


# ---------------------------------------------------------------------------------------------
# the manifest


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str

    @classmethod
    def from_json(cls, name: str, d: Any) -> FileEntry:
        if "/" in name or name.startswith("."):
            raise ManifestError(f"bad file name {name!r}")
        if not isinstance(d, Mapping):
            raise ManifestError(f"files.{name} must be an object")
        return cls(size=_int(d.get("size"), f"files.{name}.size"), sha256=str(d.get("sha256")))

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Tuning:
    """The search_k an index is queried with and, when the build tuned it, what it measured."""

    search_k: int = -1  # Annoy's default work per query
    recall_at_10: float | None = None
    ms_per_query: float | None = None
    recall_target: float | None = None  # None: search_k was given, not tuned
    recall_target_met: bool | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Tuning:
        return cls(
            search_k=int(d.get("search_k", -1)),
            recall_at_10=d.get("recall_at_10"),
            ms_per_query=d.get("ms_per_query"),
            recall_target=d.get("recall_target"),
            recall_target_met=d.get("recall_target_met"),
        )

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class AnnoyShape:
    """What an Annoy index of a bundle is: the model and entity it serves, its vectors' size
    and metric, and how many items and trees it holds."""

    model: str
    entity: str
    dims: int
    metric: str
    n_items: int
    n_trees: int


_SHAPE_TEXTS = ("model", "entity", "metric")
_SHAPE_COUNTS = ("dims", "n_items", "n_trees")


@dataclass
class IndexEntry(AnnoyShape):
    files: AnnFiles
    tuning: Tuning = field(default_factory=Tuning)
    sha256: str | None = None  # of the .ann file; set when the manifest is written

    @property
    def search_k(self) -> int:
        return self.tuning.search_k

    @classmethod
    def from_json(cls, d: Any) -> IndexEntry:
        try:
            texts = {k: d[k] for k in (*_SHAPE_TEXTS, "file", "rows", "slots")}
            counts = {k: d[k] for k in _SHAPE_COUNTS}
        except (KeyError, TypeError) as e:
            raise ManifestError(f"index entry {d!r} lacks {e}") from None
        for key, value in texts.items():
            if not isinstance(value, str):
                raise ManifestError(f"index entry {d!r}: {key} must be a string")
        for key, value in counts.items():
            _int(value, f"index entry {d!r}: {key}", allow_negative=True)
        files = AnnFiles(index=texts.pop("file"), rows=texts.pop("rows"), slots=texts.pop("slots"))
        return cls(
            **texts, **counts, files=files, tuning=Tuning.from_json(d), sha256=d.get("sha256")
        )

    def to_json(self) -> dict[str, Any]:
        shape = AnnoyShape.__dataclass_fields__
        out: dict[str, Any] = {k: getattr(self, k) for k in shape}
        out.update(file=self.files.index, rows=self.files.rows, slots=self.files.slots)
        out.update(self.tuning.to_json())
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        return out


@dataclass(frozen=True)
class UserVectorsEntry:
    model: str
    file: str
    dims: int

    @classmethod
    def from_json(cls, d: Any) -> UserVectorsEntry:
        if not isinstance(d, Mapping):
            raise ManifestError(f"user_vectors entry {d!r} must be an object")
        model, file = d.get("model"), d.get("file")
        if not isinstance(model, str) or not isinstance(file, str):
            raise ManifestError(f"user_vectors entry {d!r} needs a model and a file")
        return cls(model=model, file=file, dims=_int(d.get("dims"), f"user_vectors {model} dims"))

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "file": self.file, "dims": self.dims}


@dataclass(frozen=True)
class SignalTable:
    transform: str  # IDENTITY or LOG1P
    entries: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"transform": self.transform}
        if self.entries is not None:
            out["entries"] = self.entries
        return out


@dataclass(frozen=True)
class SignalSpec:
    """The signals of one entity beyond `cooc` and `popularity`."""

    tables: dict[str, SignalTable] = field(default_factory=dict)
    popularity: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, entity: str, d: Any) -> SignalSpec:
        where = f"signals.{entity}"
        if entity not in ENTITIES or not isinstance(d, Mapping):
            raise ManifestError(f"{where} is not an entity's signals")
        tables, pops = d.get("tables", {}), d.get("popularity", [])
        if not isinstance(tables, Mapping) or not isinstance(pops, list):
            raise ManifestError(f"{where} has malformed tables/popularity")
        out = cls()
        for name, meta in tables.items():
            transform = meta.get("transform") if isinstance(meta, Mapping) else None
            if not _is_signal_name(name) or transform not in TRANSFORMS:
                raise ManifestError(f"{where}.tables.{name} is malformed")
            out.tables[str(name)] = SignalTable(
                transform=str(transform), entries=meta.get("entries")
            )
        for name in pops:
            if not _is_signal_name(name):
                raise ManifestError(f"{where}.popularity {name!r}")
            out.popularity.append(str(name))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "tables": {name: t.to_json() for name, t in self.tables.items()},
            "popularity": list(self.popularity),
        }


def _is_signal_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and bool(_SIGNAL_NAME.fullmatch(name))
        and name not in (COOC, POPULARITY)
    )


@dataclass(frozen=True)
class TimeSpan:
    """The data's first and last play and the time its recency weights are taken at (ISO)."""

    first_play: str
    last_play: str
    as_of: str
    half_lives_days: list[float]
    transition_half_life_days: float

    @classmethod
    def from_json(cls, d: Any) -> TimeSpan | None:
        if d is None:
            return None
        try:
            return cls(**{k: d[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError) as e:
            raise ManifestError(f"time lacks {e}") from None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Training:
    """How the bundle was built: what the ensemble weights were fitted on, the build config and
    each model's parameters (as JSON)."""

    validation: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: Any) -> Training:
        d = _mapping({} if d is None else d, "training")
        return cls(
            validation=str(d.get("validation", "")),
            config=dict(d.get("config") or {}),
            models=list(d.get("models") or []),
        )

    def to_json(self) -> dict[str, Any]:
        return {"validation": self.validation, "config": self.config, "models": self.models}


@dataclass(frozen=True)
class Manifest:
    format_version: int
    bundle_version: str
    entities: dict[str, int]  # row counts: tracks, artists (and users from format 2)
    indexes: list[IndexEntry]
    # per entity, the ensemble's weights (`indexes.ensemble` owns their keys)
    ensemble: dict[str, dict[str, Any]]
    files: dict[str, FileEntry] = field(default_factory=dict)
    created_at: str = ""
    source: dict[str, Any] = field(default_factory=dict)  # the data set's summary
    training: Training = field(default_factory=Training)
    time: TimeSpan | None = None  # format 3; None: the data has no play times
    user_vectors: list[UserVectorsEntry] = field(default_factory=list)  # format 2
    signals: dict[str, SignalSpec] = field(default_factory=dict)  # format 3
    variants: dict[str, Any] = field(default_factory=dict)  # radio A/B variants
    build_seconds: dict[str, float] | None = None
    # the sha256 (and HMAC) of every other field (`indexes.bundle.seal`); None: written before
    # seals, or not written yet
    seal: dict[str, Any] | None = None

    @property
    def has_users(self) -> bool:
        """Users (ids, plays, user vectors) and case-folded names came with format 2."""
        return self.format_version >= 2

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        fmt = d.get("format_version")
        if fmt not in SUPPORTED_FORMATS:
            raise ManifestError(
                f"format_version {fmt!r} is not supported (this segue reads {SUPPORTED_FORMATS})"
            )
        for key in _REQUIRED:
            if key not in d:
                raise ManifestError(f"missing key '{key}'")
        raw_signals = d.get("signals")
        signals = _mapping({} if raw_signals is None else raw_signals, "signals")
        return cls(
            format_version=int(fmt),
            bundle_version=str(d["bundle_version"]),
            files={n: FileEntry.from_json(n, m) for n, m in _mapping(d["files"], "files").items()},
            entities=_entity_counts(d["entities"], with_users=fmt >= 2),
            indexes=[IndexEntry.from_json(e) for e in _list(d["indexes"], "indexes")],
            ensemble=dict(_mapping(d["ensemble"], "ensemble")),
            created_at=str(d.get("created_at", "")),
            source=dict(d.get("source") or {}),
            training=Training.from_json(d.get("training")),
            time=TimeSpan.from_json(d.get("time")),
            user_vectors=[
                UserVectorsEntry.from_json(e)
                for e in _list(d.get("user_vectors", []), "user_vectors")
            ],
            signals={e: SignalSpec.from_json(e, spec) for e, spec in signals.items()},
            variants=dict(d.get("variants") or {}),
            build_seconds=d.get("build_seconds"),
            seal=dict(d["seal"]) if isinstance(d.get("seal"), Mapping) else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The manifest as written: keys of later formats only where the format has them."""
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "bundle_version": self.bundle_version,
            "created_at": self.created_at,
            "source": self.source,
        }
        if self.format_version >= 3:
            out["time"] = None if self.time is None else self.time.to_json()
        out["training"] = self.training.to_json()
        out["entities"] = self.entities
        out["indexes"] = [e.to_json() for e in self.indexes]
        if self.has_users:
            out["user_vectors"] = [u.to_json() for u in self.user_vectors]
        if self.format_version >= 3:
            out["signals"] = {e: s.to_json() for e, s in self.signals.items()}
        out["ensemble"] = self.ensemble
        out["variants"] = self.variants
        if self.build_seconds is not None:
            out["build_seconds"] = self.build_seconds
        out["files"] = {name: f.to_json() for name, f in self.files.items()}
        if self.seal is not None:
            out["seal"] = self.seal
        return out


def _entity_counts(d: Any, *, with_users: bool) -> dict[str, int]:
    counts = _mapping(d, "entities")
    for entity in (*ENTITIES, USERS) if with_users else ENTITIES:
        _int(counts.get(entity), f"entities.{entity}", message="must be a count")
    return dict(counts)


def _int(value: Any, where: str, *, allow_negative: bool = False, message: str = "") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or (value < 0 and not allow_negative):
        raise ManifestError(f"{where} {message or 'must be an integer'}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ManifestError(f"{where} must be a list")
    return value
