"""A `Dataset`'s plays as Spark DataFrames, and Spark results back into numpy arrays.

The loaders' Dataset lives in the driver (its catalogue and id maps go into the bundle as they
are); its big tables go to the executors as Arrow record batches of its numpy arrays, and the
results come back the same way (pyarrow: Spark's own columnar exchange with Python)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from indexes.bundle.neighbours import Neighbours
from indexes.datasets.shape import Dataset

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


@dataclass(frozen=True)
class Frames:
    """plays: one row per play (seq, pos, track, artist, t: unix seconds or null);
    interactions: one row per user and track played (user, track, artist, count)."""

    data: Dataset
    plays: DataFrame
    interactions: DataFrame

    def unpersist(self) -> None:
        self.plays.unpersist()
        self.interactions.unpersist()


_last: Frames | None = None


def frames_of(spark: SparkSession, data: Dataset) -> Frames:
    """The DataFrames of `data`, cached: the models and the signals of one build read the same
    data (the last data set's frames are kept, an earlier one's released)."""
    global _last
    if _last is not None and _last.data is data:
        return _last
    if _last is not None:
        _last.unpersist()
    seqs = data.sequences
    lengths = np.diff(seqs.indptr)
    seq = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
    pos = (np.arange(len(seq), dtype=np.int64) - np.repeat(seqs.indptr[:-1], lengths)).astype(
        np.int32
    )
    items = np.asarray(seqs.items, dtype=np.int32)
    track_artist = np.asarray(data.items.track_artist, dtype=np.int32)
    times = seqs.times if seqs.has_item_times else None
    plays = to_frame(
        spark,
        {
            "seq": seq,
            "pos": pos,
            "track": items,
            "artist": track_artist[items],
            "t": times if times is not None else np.full(len(items), np.nan),
        },
        schema="seq INT, pos INT, track INT, artist INT, t DOUBLE",
    )
    if times is None:
        from pyspark.sql import functions as F

        plays = plays.withColumn("t", F.lit(None).cast("double"))
    coo = sparse.coo_matrix(data.interactions)
    positive = coo.data > 0
    interactions = to_frame(
        spark,
        {
            "user": coo.row[positive].astype(np.int32),
            "track": coo.col[positive].astype(np.int32),
            "artist": track_artist[coo.col[positive]],
            "count": coo.data[positive].astype(np.float64),
        },
        schema="user INT, track INT, artist INT, count DOUBLE",
    )
    _last = Frames(data=data, plays=plays.cache(), interactions=interactions.cache())
    return _last


def to_frame(spark: SparkSession, columns: dict[str, NDArray[Any]], *, schema: str) -> DataFrame:
    """A DataFrame of equally long numpy columns, sent to the JVM as Arrow record batches (no
    Python object per row, and no Python worker)."""
    import pyarrow as pa

    return spark.createDataFrame(pa.table(columns), schema=schema)


def collect_columns(df: DataFrame, names: list[str]) -> dict[str, NDArray[Any]]:
    """The columns `names` of `df` as numpy arrays (array columns: 2-d), in no set row order.

    Collected as Arrow record batches (`toArrow`), which the JVM streams to the driver as the
    partitions finish: a row at a time through pickled `Row`s, the conversion in the Python
    workers took most of the Spark signals' time on RNS, and `collect` of pickled rows ran the
    driver's JVM out of heap there."""
    table = df.select(*names).toArrow()
    return {name: _numpy(table.column(name).combine_chunks()) for name in names}


def _numpy(column: Any) -> NDArray[Any]:
    """An Arrow column as numpy; a list column (equally long lists) as a 2-d array."""
    import pyarrow as pa

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        values = column.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(len(column), -1) if len(column) else values
    return np.asarray(column.to_numpy(zero_copy_only=False))


def collect_vectors(df: DataFrame, *, id_col: str, vec_col: str, n: int, dims: int) -> tuple[
    NDArray[np.float32], NDArray[np.bool_]
]:  # fmt: skip
    """Rows `id_col` (0..n-1) of vectors `vec_col` (an array column) as an n x dims matrix, and
    which rows came back."""
    got = collect_columns(df, [id_col, vec_col])
    m = np.zeros((n, dims), dtype=np.float32)
    found = np.zeros(n, dtype=bool)
    if len(got[id_col]):
        ids = got[id_col].astype(np.int64)
        m[ids] = np.asarray(got[vec_col], dtype=np.float32).reshape(len(ids), dims)
        found[ids] = True
    return m, found


def collect_per_item(
    df: DataFrame, *, item_col: str, value_col: str, n: int
) -> NDArray[np.float32]:
    """A per-item value (0 for items missing from `df`)."""
    got = collect_columns(df, [item_col, value_col])
    out = np.zeros(n, dtype=np.float64)
    if len(got[item_col]):
        np.add.at(out, got[item_col].astype(np.int64), got[value_col].astype(np.float64))
    return out.astype(np.float32)


def collect_neighbours(df: DataFrame, *, n: int) -> Neighbours:
    """A neighbour table from rows (row, col, score, rank): each row's entries in `rank` order
    (1 = best; the order `_top` gave, ties included)."""
    got = collect_columns(df, ["row", "col", "score", "rank"])
    if not len(got["row"]):
        empty = np.zeros(n, dtype=np.int64)
        return Neighbours.from_row_counts(empty, np.zeros(0, np.int32), np.zeros(0, np.float32))
    rows = got["row"].astype(np.int64)
    order = np.lexsort((got["rank"], rows))
    return Neighbours.from_row_counts(
        np.bincount(rows, minlength=n),
        got["col"].astype(np.int32)[order],
        got["score"].astype(np.float32)[order],
    )
