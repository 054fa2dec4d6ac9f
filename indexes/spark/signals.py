"""`indexes.signals` on Spark: popularity (all-time and recency-weighted), co-occurrence (cosine
over listeners, counts over session windows) and transitions (counted and recency-weighted),
each a Spark job whose top-N lists come back to the driver as the same `Signals`.

The definitions are the local ones (see indexes/signals.py), step for step: a basket keeps its
`max_per_basket` heaviest items (ties: the lower item row), an item is not its own neighbour,
each row's list is best first with ties broken by the lower column."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from indexes.bundle.layout import COOC, POPULARITY
from indexes.bundle.neighbours import Neighbours
from indexes.config import SignalConfig
from indexes.datasets.shape import Dataset
from indexes.models.cooccurrence import _cooccurrence
from indexes.progress import log
from indexes.signals import (
    COOC_COUNT,
    DAY,
    TRANS,
    TRANS_RECENT,
    EntitySignals,
    Signals,
    recent_name,
)
from indexes.spark.frames import (
    collect_columns,
    collect_neighbours,
    collect_per_item,
    frames_of,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# the local co-occurrence's cap on a listener basket (its default, which the local signals use)
MAX_PER_BASKET: int = inspect.signature(_cooccurrence).parameters["max_per_basket"].default


def spark_signals(
    spark: SparkSession, data: Dataset, *, config: SignalConfig, as_of: float | None
) -> Signals:
    """Every plain signal of `data`, for tracks and artists (`compute_signals` on Spark)."""
    from pyspark.sql import functions as F

    span = data.sequences.time_span()
    if span is not None and as_of is None:
        as_of = span[1]
    if span is None:
        as_of = None
    seqs = data.sequences
    frames = frames_of(spark, data)
    out: dict[str, EntitySignals] = {}
    for entity, item in (("tracks", "track"), ("artists", "artist")):
        n = data.items.n_tracks if entity == "tracks" else data.items.n_artists
        listeners = frames.interactions.groupBy("user", F.col(item).alias("item")).agg(
            F.sum("count").alias("weight")
        )
        sig = EntitySignals()
        name = f"co-occurrence {entity}"
        if seqs.ordered:
            sig.tables[COOC] = _top(
                _cosine(listeners, cap=MAX_PER_BASKET), n=n, top_n=config.top_n, what=name
            )
            # counts over windows of `window` consecutive plays of a session
            windows = (
                frames.plays.select(
                    (
                        F.col("seq").cast("long") * (1 << 24)
                        + F.floor(F.col("pos") / config.window)
                    ).alias("user"),
                    F.col(item).alias("item"),
                )
                .groupBy("user", "item")
                .agg(F.count("*").cast("double").alias("weight"))
            )
            sig.tables[COOC_COUNT] = _top(
                _counts(windows, cap=config.window), n=n, top_n=config.top_n,
                what=f"session {name} counts",
            )  # fmt: skip
        else:
            sig.tables[COOC] = _top(
                _cosine(listeners, cap=MAX_PER_BASKET), n=n, top_n=config.top_n, what=name
            )
            sig.tables[COOC_COUNT] = _top(
                _counts(listeners, cap=MAX_PER_BASKET), n=n, top_n=config.top_n,
                what=f"{name} counts",
            )  # fmt: skip
        sig.popularity[POPULARITY] = collect_per_item(
            listeners.where(F.col("weight") != 0).groupBy("item").agg(F.count("*").alias("v")),
            item_col="item", value_col="v", n=n,
        )  # fmt: skip
        plays = frames.plays.select(F.col(item).alias("item"), "t", "seq", "pos")
        if as_of is not None:
            sig.popularity.update(_recent_popularity(plays, n=n, as_of=as_of, config=config))
        if seqs.ordered and len(seqs.items) > 1:
            sig.tables.update(_transitions(plays, n=n, as_of=as_of, config=config, what=entity))
        out[entity] = sig
    return Signals(entities=out, as_of=as_of, time_span=span)


def _recent_popularity(
    plays: DataFrame, *, n: int, as_of: float, config: SignalConfig
) -> dict[str, NDArray[np.float32]]:
    """Plays per item, each weighted by its recency, one array per half-life (one job)."""
    from pyspark.sql import functions as F

    age = F.lit(as_of) - F.col("t")
    sums = [
        F.sum(F.when(age >= 0, F.pow(F.lit(2.0), -age / (h * DAY))).otherwise(0.0)).alias(f"h{i}")
        for i, h in enumerate(config.half_lives_days)
    ]
    got = collect_columns(
        plays.groupBy("item").agg(*sums), ["item"] + [f"h{i}" for i in range(len(sums))]
    )
    out = {}
    for i, h in enumerate(config.half_lives_days):
        values = np.zeros(n, dtype=np.float64)
        if len(got["item"]):
            values[got["item"].astype(np.int64)] = got[f"h{i}"]
        out[recent_name(h)] = values.astype(np.float32)
    return out


def _capped(baskets: DataFrame, *, cap: int) -> DataFrame:
    """(user, item) of each basket's `cap` heaviest items."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    heaviest = Window.partitionBy("user").orderBy(F.desc("weight"), F.asc("item"))
    return (
        baskets.where(F.col("weight") != 0)
        .withColumn("r", F.row_number().over(heaviest))
        .where(F.col("r") <= cap)
        .select("user", "item")
    )


def _pairs(x: DataFrame) -> DataFrame:
    """(row, col, together, first): baskets holding both items, row != col, and the first
    basket that held both (baskets are numbered in the local engine's order: a session's
    windows in time order, or listeners by row), which orders ties (`_top`)."""
    from pyspark.sql import functions as F

    a = x.select("user", F.col("item").alias("row"))
    b = x.select("user", F.col("item").alias("col"))
    return (
        a.join(b, "user")
        .where(F.col("row") != F.col("col"))
        .groupBy("row", "col")
        .agg(F.count("*").cast("double").alias("together"), F.min("user").alias("first"))
    )


def _cosine(baskets: DataFrame, *, cap: int) -> DataFrame:
    """(row, col, score, first): |L(row) ∩ L(col)| / sqrt(|L(row)| |L(col)|) over capped
    baskets (`_pairs`)."""
    from pyspark.sql import functions as F

    x = _capped(baskets, cap=cap).cache()
    size = x.groupBy("item").agg(F.count("*").cast("float").alias("n"))
    # the local engine's float32 norms, so that its ties are ties here too
    norm = size.select("item", F.sqrt("n").cast("float").alias("norm"))
    pairs = _pairs(x)
    return (
        pairs.join(norm.withColumnRenamed("item", "row").withColumnRenamed("norm", "nr"), "row")
        .join(norm.withColumnRenamed("item", "col").withColumnRenamed("norm", "nc"), "col")
        .select(
            "row",
            "col",
            (F.col("together") / (F.col("nr") * F.col("nc")).cast("float"))
            .cast("float")
            .alias("score"),
            "first",
        )
    )


def _counts(baskets: DataFrame, *, cap: int) -> DataFrame:
    """(row, col, score, first): the number of capped baskets holding both items (`_pairs`)."""
    from pyspark.sql import functions as F

    pairs = _pairs(_capped(baskets, cap=cap))
    return pairs.select("row", "col", F.col("together").alias("score"), "first")


def _transitions(
    plays: DataFrame, *, n: int, as_of: float | None, config: SignalConfig, what: str
) -> dict[str, Neighbours]:
    """TRANS (b right after a in a sequence, counted; a repeat is no transition) and, with
    times, TRANS_RECENT (each weighted by its recency)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy("seq").orderBy("pos")
    steps = (
        plays.select(F.lag("item").over(order).alias("row"), F.col("item").alias("col"), "t").where(
            F.col("row").isNotNull() & (F.col("row") != F.col("col"))
        )
    ).cache()
    out = {
        TRANS: _top(
            steps.groupBy("row", "col").agg(F.count("*").cast("double").alias("score")),
            n=n,
            top_n=config.top_n,
            what=f"transitions {what}",
        )
    }
    if as_of is not None:
        h = config.transition_half_life_days * DAY
        age = F.lit(as_of) - F.col("t")
        w: Column = F.when(F.col("t") <= as_of, F.pow(F.lit(2.0), -F.greatest(age, F.lit(0.0)) / h))
        weighted = (
            steps.groupBy("row", "col")
            .agg(F.sum(F.coalesce(w, F.lit(0.0))).alias("score"))
            .where(F.col("score") != 0)
        )
        out[TRANS_RECENT] = _top(
            weighted, n=n, top_n=config.top_n, what=f"recent transitions {what}"
        )
    steps.unpersist()
    return out


def _top(scored: DataFrame, *, n: int, top_n: int, what: str) -> Neighbours:
    """The `top_n` best positive scores of each row, collected. Ties as in the local engine:
    co-occurrences (a `first` column) the pair that first met latest, then the higher column
    (`indexes.models.cooccurrence`); other tables the lower column."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ties = [F.desc("first"), F.desc("col")] if "first" in scored.columns else [F.asc("col")]
    best = Window.partitionBy("row").orderBy(F.desc("score"), *ties)
    top = (
        scored.where(F.col("score") > 0)
        .withColumn("rank", F.row_number().over(best))
        .where(F.col("rank") <= top_n)
        .select("row", "col", "score", "rank")
    )
    table = collect_neighbours(top, n=n)
    log(f"  {what}: {len(table.indices)} entries (Spark)")
    return table
