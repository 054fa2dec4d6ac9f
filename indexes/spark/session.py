"""The SparkSession of a build or precompute: the master and settings of `Settings` (SEGUE_SPARK_*)
unless spark-submit already set them."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# small shuffles on a small cluster: Spark's default of 200 partitions per shuffle makes a
# local build spend its time scheduling empty tasks (adaptive execution then coalesces them)
DEFAULTS = {
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}
LOCAL_DRIVER_MEMORY = "4g"


def submitted() -> bool:
    """True in a driver spark-submit started (its session outlives one command: the pipeline
    of indexes/spark/main.py runs build and precompute in it)."""
    from pyspark import SparkConf

    return SparkConf().contains("spark.master")


def spark_session(
    *, master: str | None, default_master: str, conf: Mapping[str, str]
) -> SparkSession:
    """The session, created (or the running one). The master: `master` (--spark-master) if
    given, else spark-submit's --master, else `default_master` (SEGUE_SPARK_MASTER). Settings:
    `conf` (SEGUE_SPARK_CONF) wins over spark-submit's --conf, which wins over the defaults."""
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "the Spark engine needs pyspark: pip install 'segue[spark]' (and Java 17+)"
        ) from e
    # the executors' Python is the driver's (the same venv, the same segue) unless set
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    given = SparkConf()  # what spark-submit passed, if it started this process
    builder = SparkSession.builder.appName("segue")
    if master is None:
        master = given.get("spark.master", default_master)
    builder = builder.master(master)
    defaults = dict(DEFAULTS)
    cores = _local_cores(master)
    if cores is not None:
        defaults["spark.sql.shuffle.partitions"] = str(cores)
        defaults["spark.default.parallelism"] = str(cores)
        # in local mode the driver's heap is the executors' too: Spark's 1 GB ran out collecting
        # the RNS co-occurrence table (138k tracks; loadtest/README.md, "Spark engine")
        defaults["spark.driver.memory"] = LOCAL_DRIVER_MEMORY
    for key, value in defaults.items():
        if not given.contains(key):
            builder = builder.config(key, value)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def _local_cores(master: str) -> int | None:
    """N of local[N] (local: 1, local[*]: the CPUs); None for a cluster's master."""
    if master == "local":
        return 1
    if master.startswith("local[") and master.endswith("]"):
        n = master[len("local[") : -1].split(",")[0]
        return os.cpu_count() or 1 if n == "*" else max(1, int(n))
    return None
