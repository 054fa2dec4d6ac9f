"""A token bucket per key (a subject, a client address), in the memory of one worker.

Each key's bucket holds up to `burst` tokens and gains `per_second` of them every second; a
request takes one, or waits for the next. Per worker: N workers let a caller through up to N
times as often (README, "Limits"); the ingress adds a limit in front of every pod.
"""

from __future__ import annotations

from collections import OrderedDict


class TokenBuckets:
    """`take(key, now=...)`: 0.0 when the key's request may go, else the seconds until it may.
    At most `max_keys` buckets are kept, the least recently used dropped first (a dropped key
    starts again with a full bucket)."""

    def __init__(self, *, per_second: float, burst: int, max_keys: int) -> None:
        if per_second <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("per_second > 0, burst >= 1 and max_keys >= 1")
        self.per_second, self.burst, self.max_keys = per_second, float(burst), max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, key: str, *, now: float) -> float:
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.per_second
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
