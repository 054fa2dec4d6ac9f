"""`--dataset` specs: synthetic[:N] | hetrec:DIR | plays:FILE | sessions:FILE | plays-at:FILE."""

from __future__ import annotations

from pathlib import Path

from indexes.datasets.shape import Dataset

SPECS = "synthetic[:TRACKS] | hetrec:DIR | plays:FILE | sessions:FILE | plays-at:FILE"


def load_dataset(spec: str, *, seed: int = 42, session_gap_minutes: float = 60.0) -> Dataset:
    """The data set a spec names; `session_gap_minutes` cuts the sessions of ``plays-at:``."""
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        from indexes.datasets.synthetic import generate_synthetic

        try:
            n = int(arg.replace("_", "")) if arg else 5000
        except ValueError:
            raise ValueError(
                f"--dataset {spec!r}: the synthetic size must be a number of tracks"
            ) from None
        return generate_synthetic(n_tracks=n, seed=seed)
    if kind not in ("hetrec", "plays", "sessions", "plays-at"):
        raise ValueError(f"--dataset {spec!r}: unknown kind {kind!r}; expected {SPECS}")
    if not arg:
        raise ValueError(f"--dataset {spec!r}: expected {SPECS}")
    path = Path(arg)
    if not path.exists():
        raise ValueError(f"--dataset {spec!r}: {path} does not exist")
    if kind == "hetrec":
        from indexes.datasets.hetrec import load_hetrec

        return load_hetrec(path)
    if kind == "plays":
        from indexes.datasets.plays_csv import load_plays_csv

        return load_plays_csv(path)
    if kind == "sessions":
        from indexes.datasets.sessions_csv import load_sessions_csv

        return load_sessions_csv(path)
    if kind == "plays-at":
        from indexes.datasets.plays_at import load_plays_at

        return load_plays_at(path, session_gap_minutes=session_gap_minutes)
    raise ValueError(f"--dataset {spec!r}: unknown kind {kind!r}; expected {SPECS}")
