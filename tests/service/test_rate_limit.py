"""The token buckets of the rate limit, on a clock the test gives."""

from __future__ import annotations

import pytest

from service.rate_limit import TokenBuckets


def test_a_burst_then_one_request_per_interval() -> None:
    b = TokenBuckets(per_second=2.0, burst=3, max_keys=10)
    assert [b.take("k", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("k", now=0.0) == pytest.approx(0.5)  # empty: the next token in 0.5 s
    assert b.take("k", now=0.5) == 0.0
    assert b.take("k", now=0.5) == pytest.approx(0.5)
    assert [b.take("k", now=100.0) for _ in range(4)][-1] > 0  # refilled to the burst, no more
    assert b.take("other", now=0.5) == 0.0  # each key its own


def test_a_refused_request_does_not_take_a_token() -> None:
    b = TokenBuckets(per_second=1.0, burst=1, max_keys=10)
    assert b.take("k", now=0.0) == 0.0
    assert b.take("k", now=0.4) == pytest.approx(0.6)
    assert b.take("k", now=0.8) == pytest.approx(0.2)  # still counting from the last token
    assert b.take("k", now=1.0) == 0.0


def test_the_buckets_are_bounded_least_recently_used_first() -> None:
    b = TokenBuckets(per_second=1.0, burst=1, max_keys=2)
    b.take("a", now=0.0)
    b.take("b", now=0.0)
    b.take("a", now=0.0)  # a: used last (refused)
    b.take("c", now=0.0)  # b goes
    assert len(b) == 2
    assert b.take("b", now=0.0) == 0.0  # a full bucket again
    assert b.take("c", now=0.0) > 0


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(per_second=0, burst=1, max_keys=1)
