"""`segue build --engine spark` on local[2]: the same bundle format (verify passes), the plain
signals equal to the local engine's, ALS and word2vec as good as the local ones on the same data
(not equal: MLlib and Spark ML are other implementations)."""

from __future__ import annotations

import numpy as np

from indexes.bundle import open_bundle, verify
from indexes.datasets.shape import Dataset
from indexes.pipeline import BuildResult
from indexes.spark.engine import SparkEngine
from tests.indexes.spark.conftest import SMALL


def test_the_spark_bundle_verifies_and_has_the_local_bundles_shape(
    spark_build: BuildResult, local_build: BuildResult
) -> None:
    verify(spark_build.path).close()
    spark, local = spark_build.manifest, local_build.manifest
    assert spark["training"]["config"]["engine"] == "spark"
    assert local["training"]["config"]["engine"] == "local"
    assert spark["entities"] == local["entities"]
    assert spark["signals"].keys() == local["signals"].keys()
    for entity, spec in local["signals"].items():
        assert spark["signals"][entity]["popularity"] == spec["popularity"]
        assert spark["signals"][entity]["tables"].keys() == spec["tables"].keys()
    assert {(x["model"], x["entity"]) for x in spark["indexes"]} == {
        (x["model"], x["entity"]) for x in local["indexes"]
    }
    for entity in ("tracks", "artists"):
        assert spark["ensemble"][entity]["features"] == local["ensemble"][entity]["features"]
        assert spark["ensemble"][entity]["fitted"]


EXACT_TABLES = {"cooc", "cooc_count", "trans"}


def test_the_signals_equal_the_local_engines(
    spark_build: BuildResult, local_build: BuildResult
) -> None:
    """Popularity arrays equal; each table row holds the same scores; the co-occurrence and
    transition tables, whose scores are exact, the same items in the same order (ties too:
    the local engine's tie order); recency-weighted sums may round apart, so which of two
    nearly equal ones is kept may differ there."""
    with open_bundle(spark_build.path) as s, open_bundle(local_build.path) as lo:
        for entity in ("tracks", "artists"):
            for name, values in lo.popularity[entity].items():
                np.testing.assert_allclose(s.popularity[entity][name], values, rtol=1e-5)
            for name, table in lo.tables[entity].items():
                got = s.tables[entity][name]
                np.testing.assert_array_equal(got.indptr, table.indptr, err_msg=name)
                if name in EXACT_TABLES:
                    np.testing.assert_array_equal(got.indices, table.indices, err_msg=name)
                for row in range(len(table.indptr) - 1):
                    np.testing.assert_allclose(
                        np.sort(got.row(row)[1]), np.sort(table.row(row)[1]), rtol=1e-5,
                        err_msg=f"{entity} {name} row {row}",
                    )  # fmt: skip


def _genre_precision(path: object, data: Dataset, model: str) -> float:
    """Share of each track's 10 nearest tracks in its own (generated) genre."""
    genre = np.asarray(data.truth["track_genre"])
    with open_bundle(path) as b:  # type: ignore[arg-type]
        index = b.indexes[(model, "tracks")]
        hits = total = 0
        for row in np.asarray(index.rows)[:200]:
            near = index.neighbours(int(row), 10)[0]
            hits += int(np.sum(genre[near] == genre[row]))
            total += len(near)
    return hits / max(total, 1)


def test_als_and_word2vec_are_comparable_to_the_local_ones(
    spark_build: BuildResult, local_build: BuildResult, small_data: Dataset
) -> None:
    for model in ("als", "word2vec"):
        spark = _genre_precision(spark_build.path, small_data, model)
        local = _genre_precision(local_build.path, small_data, model)
        chance = 1 / len(set(np.asarray(small_data.truth["track_genre"]).tolist()))
        assert spark > 2 * chance, (model, spark, local, chance)
        assert spark > local - 0.15, (model, spark, local)


def test_unordered_data_user_track_lists(spark_engine: SparkEngine, small_data: Dataset) -> None:
    """Sources without sessions (a user's tracks, HetRec): word2vec trains on each list in a
    seeded shuffle, the signals are co-occurrence (cosine and counts over listeners) and
    popularity only, equal to the local engine's."""
    from dataclasses import replace

    from indexes.config import SignalConfig
    from indexes.signals import compute_signals

    data = replace(small_data, sequences=replace(small_data.sequences, ordered=False, times=None))
    w2v = spark_engine.models(SMALL)[1]
    vectors = w2v.fit(data, seed=7)
    vectors.check(data)
    assert vectors.track_mask.sum() > 0.5 * data.items.n_tracks
    got = spark_engine.signals(data, config=SignalConfig(top_n=20), as_of=None)
    want = compute_signals(data, config=SignalConfig(top_n=20))
    for entity in ("tracks", "artists"):
        g, w = got.entities[entity], want.entities[entity]
        assert g.tables.keys() == w.tables.keys() == {"cooc", "cooc_count"}
        assert g.popularity.keys() == w.popularity.keys() == {"popularity"}
        for name, table in w.tables.items():
            np.testing.assert_array_equal(g.tables[name].indptr, table.indptr)
            np.testing.assert_array_equal(g.tables[name].indices, table.indices, err_msg=name)
            np.testing.assert_allclose(
                np.sort(g.tables[name].scores), np.sort(table.scores), rtol=1e-5
            )


def test_columns_go_and_come_back_whole_in_arrow_batches(spark_engine: SparkEngine) -> None:
    """A table sent in several Arrow batches and spread over partitions comes back whole and
    unchanged, an array column as a 2-d array (`to_frame`, `collect_columns`); a local session
    has the driver heap the build needs, not Spark's 1 GB."""
    from indexes.spark import frames
    from indexes.spark.session import LOCAL_DRIVER_MEMORY

    spark = spark_engine.session
    batch = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(batch)
    spark.conf.set(batch, "7")
    try:
        n = 103
        columns = {"row": np.arange(n, dtype=np.int32), "score": np.linspace(0, 1, n)}
        df = frames.to_frame(spark, columns, schema="row INT, score DOUBLE")
        got = frames.collect_columns(df.repartition(3), ["row", "score"])
        order = np.argsort(got["row"])
        np.testing.assert_array_equal(got["row"][order], columns["row"])
        np.testing.assert_allclose(got["score"][order], columns["score"])
        vectors = frames.collect_columns(
            df.selectExpr("row", "array(CAST(score AS FLOAT), CAST(row AS FLOAT)) AS vec"),
            ["row", "vec"],
        )
        assert vectors["vec"].shape == (n, 2)
        order = np.argsort(vectors["row"])
        np.testing.assert_allclose(vectors["vec"][order][:, 1], columns["row"])
        empty = frames.collect_columns(df.where("row < 0"), ["row", "score"])
        assert all(len(v) == 0 for v in empty.values())
    finally:
        spark.conf.set(batch, before)
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.memory") == LOCAL_DRIVER_MEMORY
