"""Polling with a deadline, instead of sleeping a fixed time and hoping the condition holds."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], object], *, timeout: float, every: float = 0.05, what: str = ""
) -> None:
    """Returns as soon as `predicate()` is true; fails the test once `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        time.sleep(every)
