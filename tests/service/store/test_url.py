"""Store URLs: what `parse_store_url` accepts, and the message of what it refuses."""

from __future__ import annotations

import pytest

from service.store.base import StoreConfigError, parse_store_url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://x/y", "scheme must be"),
        ("sqlite://relative.db", "sqlite:///"),
        ("cassandra://:9042/ks", "no host"),
        ("cassandra://h:port/ks", "not a number"),
        ("cassandra://h:9042/bad-keyspace", "keyspace"),
    ],
)
def test_bad_store_urls(url: str, message: str) -> None:
    with pytest.raises(StoreConfigError, match=message):
        parse_store_url(url)


def test_good_store_urls() -> None:
    u = parse_store_url("cassandra://a,b:9142/radio")
    assert (u.hosts, u.port, u.keyspace) == (("a", "b"), 9142, "radio")
    assert parse_store_url("cassandra://a").keyspace == "segue"
    assert parse_store_url("sqlite:////abs/x.db").path == "/abs/x.db"
    assert parse_store_url("sqlite:///var/x.db").path == "var/x.db"
