"""Service settings: environment variables with the prefix SEGUE_ (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
