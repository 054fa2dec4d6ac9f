"""Lists as one blob (int32 rows, float32 scores, ids by offsets) and the schema steps that move
each store to it."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from service.store.base import RADIO, RELATED, BadList, Ranked, decode_list, encode_list
from service.store.cassandra import SCHEMA_COMPONENT, schema
from service.store.factory import open_store
from service.store.sqlite import SCHEMA, SCHEMA_VERSION, SqliteStore
from tests.service import cassandra_server as cassandra


@pytest.mark.parametrize(
    "ranked",
    [
        Ranked(ids=["t1", "t22", "t333"], scores=[0.5, 0.25, -1.0], rows=[4, 0, 2**31 - 1]),
        Ranked(ids=["Zoë", "a/b", "", "夜"], scores=[1.0, 0.5, 0.25, 0.0]),  # no rows
        Ranked(ids=[], scores=[], rows=[]),
        Ranked(ids=[], scores=[]),
    ],
)
def test_a_list_round_trips(ranked: Ranked) -> None:
    assert decode_list(encode_list(ranked)) == ranked


def test_scores_are_kept_as_float32() -> None:
    scores = [0.1, 1 / 3, 123.456]
    got = decode_list(encode_list(Ranked(ids=["a", "b", "c"], scores=scores)))
    assert got.scores == np.asarray(scores, dtype=np.float32).tolist()
    assert got.scores == pytest.approx(scores, rel=1e-6)


def test_a_list_is_a_few_bytes_per_item() -> None:
    n = 250
    ranked = Ranked(ids=[f"t{i:05d}" for i in range(n)], scores=[0.5] * n, rows=list(range(n)))
    blob = encode_list(ranked)
    assert len(blob) == 8 + 4 * n + 4 * n + 4 * (n + 1) + 6 * n


def test_a_blob_of_another_format_is_refused() -> None:
    blob = bytearray(encode_list(Ranked(ids=["a"], scores=[1.0])))
    blob[0] = 99
    with pytest.raises(ValueError, match="list format 99"):
        decode_list(bytes(blob))


def test_sqlite_moves_to_blobs_and_clears_the_old_lists(tmp_path: Path) -> None:
    """A store of schema version 2 (lists as JSON) opens at the current version: its lists and
    their precompute progress are gone (they are recomputed), its stations are kept."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for version, statements in SCHEMA:
        if version <= 2:
            for statement in statements:
                conn.execute(statement)
    conn.execute("INSERT INTO radio_neighbours VALUES ('v1', 't0', '[\"t1\"]', '[0.5]', NULL, 0)")
    conn.execute("INSERT INTO precompute_progress VALUES ('v1', 'radio', 0, 1, 0)")
    conn.execute("INSERT INTO stations VALUES ('s1', '{}', 1, 1e18)")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()

    store = SqliteStore(path=path)
    try:
        assert store.get(kind=RADIO, version="v1", key="t0") is None
        assert store.chunks_done(version="v1", task="radio") == set()
        station = store.get_station(station_id="s1")
        assert station is not None and station.revision == 1
        ranked = Ranked(ids=["t1", "t2"], scores=[0.5, 0.25], rows=[1, 2])
        store.put_many(kind=RADIO, version="v1", items=[("t0", ranked)])
        assert store.get(kind=RADIO, version="v1", key="t0") == ranked
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    (blob,) = conn.execute("SELECT ranked FROM radio_neighbours").fetchone()
    conn.close()
    assert isinstance(blob, bytes) and decode_list(blob) == ranked


def test_cassandra_moves_to_blobs() -> None:
    """A keyspace at schema version 3 (lists as frozen lists): rows of the old layout read as
    missing, new lists are written and read as blobs."""
    cassandra.address()  # skip (or fail where required) without a Cassandra
    keyspace = cassandra.new_keyspace()
    cluster = cassandra.cluster()
    try:
        session = cluster.connect()
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE {keyspace}.schema_version (component text, version int, "
            "applied_at timestamp, PRIMARY KEY (component, version))"
        )
        for version, statements in schema(keyspace, ttl_seconds=0):
            if version <= 3:
                for statement in statements:
                    session.execute(statement, timeout=60)
                session.execute(
                    f"INSERT INTO {keyspace}.schema_version (component, version) VALUES (%s, %s)",
                    (SCHEMA_COMPONENT, version),
                )
        session.execute(
            f"INSERT INTO {keyspace}.related_artists (bundle_version, artist_id, ids, scores) "
            "VALUES ('v1', 'a0', ['a1'], [0.5])"
        )
        store = open_store(cassandra.url(keyspace))
        try:
            assert store.get(kind=RELATED, version="v1", key="a0") is None
            assert store.get_many(kind=RELATED, version="v1", keys=["a0"]) == {}
            ranked = Ranked(ids=["a1", "a2"], scores=[0.5, 0.25], rows=[1, 2])
            store.put_many(kind=RELATED, version="v1", items=[("a0", ranked)])
            assert store.get(kind=RELATED, version="v1", key="a0") == ranked
            assert store.get_many(kind=RELATED, version="v1", keys=["a0"]) == {"a0": ranked}
        finally:
            store.close()
        versions = {
            r.version
            for r in session.execute(
                f"SELECT version FROM {keyspace}.schema_version WHERE component = %s",
                (SCHEMA_COMPONENT,),
            )
        }
        assert versions == {1, 2, 3, 4}
    finally:
        cluster.shutdown()
        cassandra.drop_keyspace(keyspace)


def test_any_damaged_blob_is_refused_never_decoded_to_other_ids() -> None:
    """Cut short at every length, with bytes appended, with its offsets or flags changed, or
    any random bytes: BadList, never another exception and never other ids."""
    ranked = Ranked(ids=["t0076", "t0077", "Zoë"], scores=[0.9, 0.8, 0.7], rows=[1, 2, 3])
    blob = encode_list(ranked)
    for n in range(len(blob)):
        with pytest.raises(BadList):
            decode_list(blob[:n])
    with pytest.raises(BadList):
        decode_list(blob + b"x")
    flag = bytearray(blob)
    flag[1] = 7
    with pytest.raises(BadList):
        decode_list(bytes(flag))
    offsets_at = 8 + 4 * 3 * 2  # header, rows, scores
    for at in range(offsets_at, offsets_at + 16):
        broken = bytearray(blob)
        broken[at] ^= 0x40
        with pytest.raises(BadList):
            decode_list(bytes(broken))
    rng = np.random.default_rng(0)
    for size in [*range(0, 64), *rng.integers(64, 4096, size=200).tolist()]:
        noise = rng.integers(0, 256, size=size, dtype=np.uint8).tobytes()
        with contextlib.suppress(BadList):  # or a list: any bytes, no other exception
            decode_list(noise)


def test_a_damaged_stored_list_reads_as_missing(tmp_path: Path) -> None:
    """The reader computes the list again and overwrites the row (a 500 otherwise, for good)."""
    store = SqliteStore(path=tmp_path / "s.db")
    try:
        good = Ranked(ids=["a"], scores=[1.0], rows=[0])
        store.put_many(kind=RADIO, version="v1", items=[("t0", good), ("t1", good)])
        with sqlite3.connect(tmp_path / "s.db") as conn:
            conn.execute("UPDATE radio_neighbours SET ranked = ? WHERE track_id = 't0'", (b"\x01",))
        assert store.get(kind=RADIO, version="v1", key="t0") is None
        assert store.get_many(kind=RADIO, version="v1", keys=["t0", "t1"]) == {"t1": good}
    finally:
        store.close()
