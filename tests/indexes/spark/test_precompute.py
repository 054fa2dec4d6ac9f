"""`segue precompute --engine spark` on local[2]: the same lists as the local precompute, in
SQLite (resumed chunk by chunk) and, with the bundle shipped by SparkFiles, in Cassandra."""

from __future__ import annotations

from pathlib import Path

from indexes.pipeline import BuildResult
from indexes.spark.engine import SparkEngine
from indexes.spark.precompute import spark_precompute
from service.precompute import list_key, precompute
from service.settings import Settings
from service.store.base import RADIO, RELATED
from service.store.factory import open_store
from tests.service import cassandra_server as cassandra

CHUNK = 60


def test_spark_writes_the_local_precomputes_lists_and_resumes(
    spark_engine: SparkEngine, spark_build: BuildResult, tmp_path: Path
) -> None:
    bundles = spark_build.path.parent
    settings = Settings(store=f"sqlite:///{tmp_path / 'spark.db'}")
    config = settings.precompute_config(chunk_size=CHUNK, processes=2, max_chunks=3)
    store = open_store(settings.store, options=settings.store_options())
    local_store = open_store(f"sqlite:///{tmp_path / 'local.db'}")
    try:
        partial = spark_precompute(
            spark_engine.session, bundles=bundles, store=store, settings=settings, config=config
        )
        n = spark_build.manifest["entities"]
        assert n["artists"] <= CHUNK  # 3 chunks: the one of the artists, 2 of the tracks
        assert not partial.complete
        assert partial.written == {RELATED: n["artists"], RADIO: 2 * CHUNK}
        full_config = settings.precompute_config(chunk_size=CHUNK, processes=2)
        full = spark_precompute(
            spark_engine.session, bundles=bundles, store=store, settings=settings,
            config=full_config,
        )  # fmt: skip
        assert full.complete
        assert full.skipped == partial.written  # the chunks done were not redone
        local = precompute(bundles=bundles, store=local_store, config=full_config)
        assert local.complete
        for kind in (RADIO, RELATED):
            assert full.written[kind] + full.skipped[kind] == local.written[kind]
        assert local.written == {RADIO: n["tracks"], RELATED: n["artists"]}
        # the same code on the same bundle: the same lists
        version = full.version
        for kind, entity in ((RADIO, "tracks"), (RELATED, "artists")):
            key = list_key(kind, version=version, config=full_config)
            for row in (0, 7, n[entity] - 1):
                ident = _id(spark_build, entity, row)
                got = store.get(kind=kind, version=key, key=ident)
                want = local_store.get(kind=kind, version=key, key=ident)
                assert got is not None and want is not None, ident
                assert got.ids == want.ids and got.scores == want.scores
    finally:
        store.close()
        local_store.close()


def _id(build: BuildResult, entity: str, row: int) -> str:
    from indexes.bundle import open_bundle

    with open_bundle(build.path, verify_checksums=False) as b:
        return b.entities[entity].id_of(row)


def test_spark_precompute_into_cassandra_with_the_bundle_shipped(
    spark_engine: SparkEngine, spark_build: BuildResult
) -> None:
    keyspace = cassandra.new_keyspace()
    settings = Settings(store=cassandra.url(keyspace))  # skips (or fails in CI) without one
    store = open_store(settings.store, options=settings.store_options())
    try:
        config = settings.precompute_config(chunk_size=CHUNK * 2)
        report = spark_precompute(
            spark_engine.session, bundles=spark_build.path.parent, store=store,
            settings=settings, config=config, ship_bundle=True,
        )  # fmt: skip
        n = spark_build.manifest["entities"]
        assert report.complete
        assert report.written == {RADIO: n["tracks"], RELATED: n["artists"]}
        key = list_key(RADIO, version=report.version, config=config)
        last = _id(spark_build, "tracks", n["tracks"] - 1)
        got = store.get(kind=RADIO, version=key, key=last)
        assert got is not None and len(got.ids) > 10
    finally:
        store.close()
        cassandra.drop_keyspace(keyspace)
