"""One Spark session (local[2]) and one small Spark build for every Spark test: starting the JVM
and training on Spark are what take the time."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from indexes.datasets.shape import Dataset
from indexes.datasets.synthetic import generate_synthetic
from indexes.pipeline import BuildConfig, BuildResult, build_bundle

if TYPE_CHECKING:
    from indexes.spark.engine import SparkEngine

# small: the Spark build runs twice over it (the validation bundle, then the bundle)
SMALL = BuildConfig(
    dims=16, n_trees=8, search_k=400, seed=7, threads=1, max_validation_users=300,
    max_validation_seeds=600,
)  # fmt: skip


def _need_spark() -> None:
    """Skip without pyspark or Java (CI installs both: fail there instead)."""
    reason = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed (pip install -e '.[dev,spark]'; scripts/dev does)"
    if reason is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "no Java for Spark (Java 17+: apt-get install openjdk-17-jre-headless)"
    if reason is not None:
        if os.environ.get("SEGUE_TEST_SPARK_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def spark_engine() -> Iterator[SparkEngine]:
    _need_spark()
    from indexes.spark.engine import SparkEngine

    engine = SparkEngine(master="local[2]")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def small_data() -> Dataset:
    return generate_synthetic(n_tracks=400, seed=7)


@pytest.fixture(scope="session")
def spark_build(
    spark_engine: SparkEngine, small_data: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> BuildResult:
    root = tmp_path_factory.mktemp("spark-bundles")
    return build_bundle(small_data, out=root, config=SMALL, engine=spark_engine)


@pytest.fixture(scope="session")
def local_build(small_data: Dataset, tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    root = tmp_path_factory.mktemp("local-bundles")
    return build_bundle(small_data, out=root, config=SMALL)
