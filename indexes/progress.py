"""Progress output for long offline steps: periodic lines with counts and rates, then a summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


class Ticker:
    """Counts work done and prints a line at most every `every` seconds."""

    def __init__(
        self, name: str, *, total: int | None = None, unit: str = "items", every: float = 2.0
    ):
        self.name, self.total, self.unit, self.every = name, total, unit, every
        self.done = 0
        self.start = self.last = time.perf_counter()

    def add(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            of = f"/{self.total}" if self.total is not None else ""
            log(f"{self.name}: {self.done}{of} {self.unit} ({rate:,.0f} {self.unit}/s)")


@contextmanager
def stage(name: str, timings: dict[str, float] | None = None) -> Iterator[None]:
    """Logs the start and the duration of a step, and records it in `timings`."""
    log(f"{name} ...")
    start = time.perf_counter()
    yield
    seconds = time.perf_counter() - start
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + seconds
    log(f"{name} done in {seconds:.1f}s")
