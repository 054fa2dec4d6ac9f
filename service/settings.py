"""Every default of the service, in one place.

`Settings` reads the environment variables with the prefix SEGUE_ (pydantic-settings). The
objects the parts of the service are configured with (`StoreOptions`, `StationConfig`,
`PrecomputeConfig`, the radio's `Rules`) are built from it by its methods, which pass every field;
the few values that are not settings (no SEGUE_ variable: fixed parameters, the run options of
`segue precompute`) are written in those methods, so this is the one file where a default is.

Those objects have no defaults of their own: a caller that wants the defaults asks
`Settings.defaults()` for them (and `dataclasses.replace` for a changed field).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.radio import Rules
from service.store.url import StoreConfigError, parse_store_url

CONSISTENCY_LEVELS = frozenset(
    {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"}
)


class Settings(BaseSettings):
    """Every field can be set as SEGUE_<NAME> (e.g. SEGUE_BUNDLES=/srv/bundles)."""

    model_config = SettingsConfigDict(env_prefix="SEGUE_", extra="ignore", frozen=True)

    # -- serving ----------------------------------------------------------------------------
    bundles: Path = Field(
        Path("var/bundles"), description="bundles directory with a 'current' link"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    verify_checksums: bool = Field(
        True,
        description="sha256 every file of a new bundle version before a worker maps it, once "
        "per host (the first worker verifies, the others trust its marker); false: every other "
        "check of `segue verify` still runs (seal, sizes, dims, counts, every Annoy node)",
    )
    bundle_signing_key: SecretStr | None = Field(
        None,
        description="HMAC key the build signs each bundle's manifest with and the service "
        "checks; set, a bundle without its signature is refused (unset: unsigned bundles are "
        "served, a manifest edited after the build is still refused by its sha256 seal)",
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=64 * 1024 * 1024,
        description="the largest request body accepted (413 above it)",
    )  # fmt: skip
    swap_poll_seconds: float = Field(
        2.0, gt=0, le=3600, description="how often to look at 'current'"
    )
    metrics_dir: Path | None = Field(
        None, description="prometheus multiprocess directory (segue serve makes one if unset)"
    )

    # -- lists ------------------------------------------------------------------------------
    default_limit: int = Field(20, ge=1, le=500)
    max_limit: int = Field(100, ge=1, le=500)
    artist_cap: int = Field(2, ge=1, le=100, description="tracks per artist in one list")
    candidates_per_source: int = Field(50, ge=5, le=1000)
    search_k: int | None = Field(None, ge=1, description="override the manifest's Annoy search_k")

    # -- store ------------------------------------------------------------------------------
    store: str = Field(
        "sqlite:///var/segue.db",
        description="sqlite:///PATH (embedded, one machine) or cassandra://HOST[,HOST]:PORT/KEYSPACE",
    )
    store_timeout_seconds: float = Field(2.0, gt=0, le=120, description="per store request")
    store_connect_timeout_seconds: float = Field(5.0, gt=0, le=120)
    store_retries: int = Field(1, ge=0, le=10, description="retries of a timed-out request")
    store_check_seconds: float = Field(
        1.0, gt=0, le=600, description="how often each worker pings the store"
    )
    store_retry_after_seconds: int = Field(
        5, ge=1, le=3600, description="Retry-After of a 503 when the store is down"
    )
    store_ttl_seconds: int = Field(
        30 * 24 * 3600, ge=0, description="Cassandra TTL of cached lists (0: keep)"
    )
    cassandra_consistency: str = Field("LOCAL_QUORUM", description="reads and writes")
    cassandra_replication: str = Field(
        '{"class": "SimpleStrategy", "replication_factor": 1}',
        description="the keyspace's replication map, JSON, used when segue creates it",
    )
    cassandra_protocol_version: int = Field(5, ge=3, le=5, description="CQL native protocol")
    cassandra_local_dc: str | None = Field(
        None, description="datacenter to query (default: the contact point's)"
    )
    cassandra_username: str | None = None
    cassandra_password: SecretStr | None = None

    # -- radio and stations -----------------------------------------------------------------
    radio_size: int = Field(250, ge=1, le=1000, description="radio neighbours kept per track")
    radio_artist_cap: int = Field(10, ge=1, le=1000, description="tracks per artist among them")
    # as deep as the list: where the data rotates a small catalogue, the recency-weighted
    # popularity list alone may hold most of the tracks played next
    radio_candidates_per_source: int = Field(
        250, ge=5, le=999, description="ensemble candidates from each source for radio lists"
    )
    station_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=0, description="a station expires this long after its last use (0: never)"
    )
    radio_artist_gap: int = Field(3, ge=0, le=50, description="slots between tracks of one artist")
    # a station is read and written whole on every call: these bound it
    station_history: int = Field(
        500, ge=1, le=100_000,
        description="played tracks (none served again), thumbed-down and liked tracks and "
        "artist downs a station remembers",
    )  # fmt: skip
    station_dropped_artists: int = Field(
        50, ge=1, le=100_000, description="dropped artists a station keeps out (the last ones)"
    )
    station_event_ids: int = Field(
        128, ge=1, le=100_000,
        description="event ids a station keeps: a retried event among them changes nothing",
    )  # fmt: skip
    station_busy_seconds: float = Field(
        10.0, gt=0, le=600,
        description="a request on a busy station waits this long for its turn (in its worker) "
        "and retries conflicting writes (between workers) this long, then answers 409 with "
        "Retry-After",
    )  # fmt: skip
    station_queue_max: int = Field(
        500, ge=10, le=100_000, description="tracks a station queues at most (the heaviest stay)"
    )
    list_cache_size: int = Field(
        8192, ge=0, le=10_000_000,
        description="radio and related lists each worker keeps decoded in memory (0: none)",
    )  # fmt: skip
    response_cache_mb: float = Field(
        8.0, ge=0, le=4096,
        description="rendered JSON answers of lists served from memory each worker keeps, in MB "
        "(one ring buffer; 0: none): a warm list's answer is sent as rendered before",
    )  # fmt: skip

    # -- who calls (service/auth.py) --------------------------------------------------------
    auth: Literal["jwt", "off"] = Field(
        "jwt",
        description="jwt: every route but the probes (and /metrics, see SEGUE_AUTH_OPEN_METRICS) "
        "needs a bearer JWT; off: no checks at all (logs a warning at start)",
    )
    auth_secrets: SecretStr | None = Field(
        None,
        description="HS256 keys, `KID:SECRET` entries separated by spaces or commas (each secret "
        "at least 32 bytes): all verify, the first signs `segue token`",
    )
    auth_secrets_file: Path | None = Field(
        None, description="a file holding SEGUE_AUTH_SECRETS' value (a mounted Kubernetes Secret)"
    )
    auth_jwks_file: Path | None = Field(
        None, description="a JWKS file of RS256/ES256 public keys (an identity provider's)"
    )
    auth_audience: str = Field("segue", min_length=1, description="the tokens' required `aud`")
    auth_issuer: str = Field("segue", min_length=1, description="the tokens' required `iss`")
    auth_leeway_seconds: int = Field(
        30, ge=0, le=600, description="clock skew allowed on `exp`, `nbf` and `iat`"
    )
    auth_anonymous_catalog: bool = Field(
        False, description="catalogue reads without a token (else they need `catalog:read`)"
    )
    auth_open_metrics: bool = Field(
        True, description="/metrics without a token (Prometheus in the cluster); false: admin"
    )
    rate_limit_per_second: float = Field(
        20.0, ge=0, le=1_000_000,
        description="requests per second of one token's subject, per worker (0: no limit)",
    )  # fmt: skip
    rate_limit_burst: int = Field(
        40, ge=1, le=1_000_000, description="requests one subject or address may send at once"
    )
    rate_limit_anonymous_per_second: float = Field(
        10.0, ge=0, le=1_000_000,
        description="requests per second of one client address without a valid token, per "
        "worker (0: no limit)",
    )  # fmt: skip

    def signing_key(self) -> bytes | None:
        """SEGUE_BUNDLE_SIGNING_KEY as bytes (None when unset or empty)."""
        key = self.bundle_signing_key
        return key.get_secret_value().encode() if key and key.get_secret_value() else None

    # -- the Spark engine of `segue build/precompute --engine spark` -------------------------
    spark_master: str = Field(
        "local[2]",
        description="Spark master when not started by spark-submit: local[N], spark://, k8s://",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description='Spark settings as JSON, e.g. {"spark.driver.memory": "8g"}',
    )
    spark_word2vec_partitions: int = Field(
        1, ge=1, le=10_000,
        description="Spark ML Word2Vec numPartitions: >1 is faster and further from gensim",
    )  # fmt: skip

    @classmethod
    def defaults(cls) -> Settings:
        """Every setting at its declared default, whatever the environment holds."""
        return cls.model_construct()

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        try:
            parse_store_url(value)
        except StoreConfigError as e:
            raise ValueError(str(e)) from None
        return value

    @field_validator("cassandra_consistency")
    @classmethod
    def _consistency(cls, value: str) -> str:
        if value.upper() not in CONSISTENCY_LEVELS:
            raise ValueError(
                f"unknown consistency level {value!r}; one of {sorted(CONSISTENCY_LEVELS)}"
            )
        return value.upper()

    @field_validator("cassandra_replication")
    @classmethod
    def _replication(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"not JSON: {e}") from None
        if not isinstance(parsed, dict) or "class" not in parsed:
            raise ValueError(
                'a JSON object with a "class", e.g. {"class": "NetworkTopologyStrategy", "dc1": 3}'
            )
        for k, v in parsed.items():
            if not _plain(str(k)) or not _plain(str(v)):
                raise ValueError(f"bad replication entry {k!r}: {v!r}")
        return value

    @model_validator(mode="after")
    def _limits(self) -> Settings:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"SEGUE_DEFAULT_LIMIT ({self.default_limit}) must not exceed "
                f"SEGUE_MAX_LIMIT ({self.max_limit})"
            )
        return self

    @model_validator(mode="after")
    def _one_secrets_source(self) -> Settings:
        if self.auth_secrets is not None and self.auth_secrets_file is not None:
            raise ValueError("set SEGUE_AUTH_SECRETS or SEGUE_AUTH_SECRETS_FILE, not both")
        return self

    def store_options(self) -> StoreOptions:
        password = self.cassandra_password.get_secret_value() if self.cassandra_password else None
        replication = tuple(
            (str(k), str(v)) for k, v in json.loads(self.cassandra_replication).items()
        )
        return StoreOptions(
            timeout_seconds=self.store_timeout_seconds, retries=self.store_retries,
            connect_timeout_seconds=self.store_connect_timeout_seconds,
            consistency=self.cassandra_consistency, replication=replication,
            ttl_seconds=self.store_ttl_seconds, station_ttl_seconds=self.station_ttl_seconds,
            protocol_version=self.cassandra_protocol_version, local_dc=self.cassandra_local_dc,
            username=self.cassandra_username, password=password,
            serial_consistency="LOCAL_SERIAL", write_concurrency=64,
        )  # fmt: skip

    def rules(self) -> Rules:
        """The queue rules of a station: the artist gap and the bounds are settings, the rest
        fixed."""
        return Rules(
            artist_gap=self.radio_artist_gap, low_water=30, refill_sources=10,
            up_boost=2.0, weak_up_boost=0.5, down_factor=0.2, weak_down_factor=0.6,
            artist_down_factor=0.5, artist_ban_downs=2.0, skip_down=1.0 / 3.0,
            history=self.station_history, dropped_artists=self.station_dropped_artists,
            event_ids=self.station_event_ids,
            queue_max=self.station_queue_max,
        )  # fmt: skip

    def station_config(self) -> StationConfig:
        return StationConfig(
            rules=self.rules(), radio_size=self.radio_size, radio_artist_cap=self.radio_artist_cap,
            per_source=self.radio_candidates_per_source, search_k=self.search_k,
            seed_tracks_per_artist=3, max_attempts=100, busy_seconds=self.station_busy_seconds,
        )  # fmt: skip

    def precompute_config(
        self, *, processes: int = 0, chunk_size: int = 500, max_chunks: int | None = None
    ) -> PrecomputeConfig:
        """`segue precompute`'s lists are the ones the service computes on a miss (the same
        radio settings, candidates and search_k); the run options are its flags'."""
        return PrecomputeConfig(
            processes=processes, chunk_size=chunk_size, max_chunks=max_chunks,
            radio_size=self.radio_size, radio_artist_cap=self.radio_artist_cap,
            radio_candidates_per_source=self.radio_candidates_per_source,
            candidates_per_source=self.candidates_per_source, search_k=self.search_k,
        )  # fmt: skip


def _plain(text: str) -> bool:
    """Letters, digits, '_' and '.': safe to put in a CQL replication map."""
    return text.replace("_", "").replace(".", "").isalnum()


@dataclass(frozen=True, kw_only=True)
class StoreOptions:
    """How to talk to the store: `Settings.store_options()` (SEGUE_STORE_*, SEGUE_CASSANDRA_*)."""

    timeout_seconds: float  # per request
    connect_timeout_seconds: float
    retries: int  # retries of a timed-out or unavailable request (Cassandra)
    consistency: str  # Cassandra consistency level of reads and writes
    replication: tuple[tuple[str, str], ...]  # of a keyspace segue makes
    ttl_seconds: int  # Cassandra TTL of computed lists (0: none)
    station_ttl_seconds: int  # expiry after a station's last use
    serial_consistency: str  # Cassandra: of station updates (LWT)
    write_concurrency: int  # requests in flight in bulk reads/writes
    protocol_version: int  # CQL native protocol (4.0+: 5; 3.x: 4)
    local_dc: str | None  # Cassandra: datacenter (None: the first contact's)
    username: str | None
    password: str | None


@dataclass(frozen=True, kw_only=True)
class StationConfig:
    """What the stations are made with: `Settings.station_config()` (SEGUE_RADIO_*)."""

    rules: Rules
    radio_size: int
    radio_artist_cap: int
    per_source: int
    search_k: int | None  # SEGUE_SEARCH_K (None: each index's own): part of the lists' key
    # an artist seed stands for its most listened tracks
    seed_tracks_per_artist: int
    max_attempts: int  # conditional writes tried before StationBusy
    busy_seconds: float  # and for at most this long


@dataclass(frozen=True, kw_only=True)
class PrecomputeConfig:
    """What `segue precompute` writes and how: `Settings.precompute_config()`."""

    processes: int  # 0: one per CPU
    chunk_size: int
    max_chunks: int | None  # stop after this many (a partial run)
    radio_size: int
    radio_artist_cap: int
    radio_candidates_per_source: int
    candidates_per_source: int
    search_k: int | None


def describe_error(error: ValidationError) -> str:
    """'SEGUE_PORT=abc: Input should be a valid integer' lines for a bad environment."""
    lines = []
    for e in error.errors():
        name = "SEGUE_" + "_".join(str(p) for p in e["loc"]).upper() if e["loc"] else "settings"
        value = e.get("input")
        shown = f"={value!r}" if e["loc"] and not isinstance(value, dict) else ""
        lines.append(f"{name}{shown}: {e['msg']}")
    return "bad setting: " + "; ".join(lines)
