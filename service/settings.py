"""Service settings: environment variables with the prefix SEGUE_ (pydantic-settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.store.base import StoreConfigError, StoreOptions, parse_store_url

if TYPE_CHECKING:
    from service.stations import StationConfig


class Settings(BaseSettings):
    """Every field can be set as SEGUE_<NAME> (e.g. SEGUE_BUNDLES=/srv/bundles)."""

    model_config = SettingsConfigDict(env_prefix="SEGUE_", extra="ignore", frozen=True)

    bundles: Path = Field(
        Path("var/bundles"), description="bundles directory with a 'current' link"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    verify_checksums: bool = Field(
        False,
        description="sha256 every bundle file at load (slow on big bundles; `segue verify` and "
        "the build already check them); structure, sizes, dims and counts are always checked",
    )
    swap_poll_seconds: float = Field(
        2.0, gt=0, le=3600, description="how often to look at 'current'"
    )
    default_limit: int = Field(20, ge=1, le=500)
    max_limit: int = Field(100, ge=1, le=500)
    artist_cap: int = Field(2, ge=1, le=100, description="tracks per artist in one list")
    candidates_per_source: int = Field(50, ge=5, le=1000)
    search_k: int | None = Field(None, ge=1, description="override the manifest's Annoy search_k")
    metrics_dir: Path | None = Field(
        None, description="prometheus multiprocess directory (segue serve makes one if unset)"
    )
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
    radio_size: int = Field(250, ge=1, le=1000, description="radio neighbours kept per track")
    radio_artist_cap: int = Field(10, ge=1, le=1000, description="tracks per artist among them")
    # as deep as the list: where the data rotates a small catalogue, the recency-weighted
    # popularity list alone may hold most of the 250 tracks played next
    radio_candidates_per_source: int = Field(
        250, ge=5, le=999, description="ensemble candidates from each source for radio lists"
    )

    station_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=0, description="a station expires this long after its last use (0: never)"
    )
    radio_artist_gap: int = Field(3, ge=0, le=50, description="slots between tracks of one artist")

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
        levels = {"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM",
                  "LOCAL_ONE"}  # fmt: skip
        if value.upper() not in levels:
            raise ValueError(f"unknown consistency level {value!r}; one of {sorted(levels)}")
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
            if (
                not str(k).replace("_", "").replace(".", "").isalnum()
                or not str(v).replace("_", "").replace(".", "").isalnum()
            ):
                raise ValueError(f"bad replication entry {k!r}: {v!r}")
        return value

    def station_config(self) -> StationConfig:
        from service.radio import Rules
        from service.stations import StationConfig

        return StationConfig(
            rules=Rules(artist_gap=self.radio_artist_gap),
            radio_size=self.radio_size,
            radio_artist_cap=self.radio_artist_cap,
            per_source=self.radio_candidates_per_source,
        )

    def store_options(self) -> StoreOptions:
        return StoreOptions(
            timeout_seconds=self.store_timeout_seconds,
            connect_timeout_seconds=self.store_connect_timeout_seconds,
            retries=self.store_retries,
            consistency=self.cassandra_consistency,
            replication=tuple(
                (str(k), str(v)) for k, v in json.loads(self.cassandra_replication).items()
            ),
            ttl_seconds=self.store_ttl_seconds,
            station_ttl_seconds=self.station_ttl_seconds,
            protocol_version=self.cassandra_protocol_version,
            local_dc=self.cassandra_local_dc,
            username=self.cassandra_username,
            password=self.cassandra_password.get_secret_value()
            if self.cassandra_password
            else None,
        )

    @model_validator(mode="after")
    def _limits(self) -> Settings:
        if self.default_limit > self.max_limit:
            raise ValueError(
                f"SEGUE_DEFAULT_LIMIT ({self.default_limit}) must not exceed "
                f"SEGUE_MAX_LIMIT ({self.max_limit})"
            )
        return self


def describe_error(error: ValidationError) -> str:
    """'SEGUE_PORT=abc: Input should be a valid integer' lines for a bad environment."""
    lines = []
    for e in error.errors():
        name = "SEGUE_" + "_".join(str(p) for p in e["loc"]).upper() if e["loc"] else "settings"
        value = e.get("input")
        shown = f"={value!r}" if e["loc"] and not isinstance(value, dict) else ""
        lines.append(f"{name}{shown}: {e['msg']}")
    return "bad setting: " + "; ".join(lines)
