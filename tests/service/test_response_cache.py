"""The rendered answers' ring: bounded by bytes, the oldest overwritten first, never a torn or
stale answer."""

from __future__ import annotations

import random

from service.response_cache import ResponseCache


def test_answers_are_kept_within_the_ring_the_oldest_overwritten_first() -> None:
    reads: list[bool] = []
    cache = ResponseCache(max_bytes=10, on_read=reads.append)
    cache.put("a", b"aaaa")
    cache.put("b", b"bbbb")
    assert cache.get("a") == b"aaaa"
    cache.put("c", b"cccc")  # does not fit after b: wraps, overwrites a
    assert cache.get("a") is None
    assert (cache.get("b"), cache.get("c")) == (b"bbbb", b"cccc")
    assert cache.size == 8 and len(cache) == 2
    assert reads == [True, False, True, True]


def test_an_answer_too_big_an_empty_one_and_a_second_copy_are_not_kept() -> None:
    cache = ResponseCache(max_bytes=10)
    cache.put("a", b"12345")
    cache.put("a", b"999")  # the same key: answers never change, the first copy stays
    cache.put("big", b"x" * 11)
    cache.put("empty", b"")
    assert cache.get("a") == b"12345" and cache.get("big") is None and cache.get("empty") is None


def test_a_zero_budget_keeps_nothing() -> None:
    cache = ResponseCache(max_bytes=0)
    cache.put("a", b"1")
    assert cache.get("a") is None and len(cache) == 0


def test_every_kept_answer_reads_back_whole_under_churn() -> None:
    """Thousands of answers of random sizes through a small ring: whatever is kept reads back
    exactly as written, and what is kept fits in the ring."""
    rng = random.Random(7)
    cache = ResponseCache(max_bytes=1000)
    written: dict[int, bytes] = {}
    for i in range(5000):
        body = bytes([i % 251]) * rng.randint(1, 300)
        written[i] = body
        cache.put(i, body)
        for k in rng.sample(range(i + 1), min(5, i + 1)):
            got = cache.get(k)
            assert got is None or got == written[k], k
        assert cache.size <= 1000
    assert len(cache) > 0
