"""The vector models on Spark: implicit ALS from Spark MLlib (Hu, Koren, Volinsky; `implicitPrefs`)
and word2vec from Spark ML, with the local models' hyper-parameters mapped onto them. Their
vectors come back to the driver and go through the local models' own post-processing (support
filters, artists from tracks), so a bundle is the same shape whichever engine trained it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from indexes.datasets.shape import Dataset
from indexes.models.als import MIN_LISTENERS, AlsModel, als_vectors
from indexes.models.base import Vectors
from indexes.models.word2vec import MIN_PLAYS, word2vec_vectors
from indexes.progress import log
from indexes.spark.frames import collect_vectors, frames_of


def _session():  # type: ignore[no-untyped-def]  # pyspark's SparkSession, typed at the call
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is None:
        raise RuntimeError("no SparkSession: the Spark models run inside SparkEngine")
    return session


@dataclass(frozen=True)
class SparkAlsModel:
    """`AlsModel`'s parameters on MLlib's ALS. Confidence: MLlib's is 1 + alpha * r, so r is
    log(1 + plays) (`counts="log"`) or the plays, as in the local model. Regularization: MLlib
    scales `regParam` by each user's (item's) number of ratings ("ALS-WR"), `implicit` does not;
    regParam is `regularization` divided by the mean ratings per user, so that a typical user's
    penalty matches the local model's."""

    name: ClassVar[str] = "als"
    metric: ClassVar[str] = "angular"
    factors: int = 32
    regularization: float = 0.05
    alpha: float = 10.0
    counts: Literal["linear", "log"] = "log"
    iterations: int = 15
    min_listeners: int = MIN_LISTENERS

    @property
    def dims(self) -> int:
        return self.factors

    def fit(self, data: Dataset, *, seed: int) -> Vectors:
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F

        spark = _session()
        frames = frames_of(spark, data)
        rating = F.log1p("count") if self.counts == "log" else F.col("count")
        ratings = frames.interactions.select("user", "track", rating.alias("rating"))
        active_users = max(1, int(np.count_nonzero(np.diff(data.interactions.indptr))))
        reg_param = self.regularization / max(1.0, data.interactions.nnz / active_users)
        als = ALS(
            rank=self.factors, maxIter=self.iterations, regParam=reg_param, implicitPrefs=True,
            alpha=self.alpha, userCol="user", itemCol="track", ratingCol="rating", seed=seed,
            numUserBlocks=_blocks(spark), numItemBlocks=_blocks(spark),
        )  # fmt: skip
        _checkpoints(spark)
        model = als.fit(ratings)
        tracks, _ = collect_vectors(
            model.itemFactors, id_col="id", vec_col="features", n=data.items.n_tracks,
            dims=self.factors,
        )  # fmt: skip
        log(f"  als (Spark MLlib): regParam {reg_param:.2g}, {ratings.count()} ratings")
        local = AlsModel(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha,
            counts=self.counts, iterations=self.iterations, min_listeners=self.min_listeners,
        )  # fmt: skip
        # users are encoded in the driver with the local model's half step against these
        # factors (the bundle's user vectors, for users held out of training too)
        encoder = local.user_encoder(tracks.copy())
        return als_vectors(data, tracks, min_listeners=self.min_listeners, user_encoder=encoder)


@dataclass(frozen=True)
class SparkWord2VecModel:
    """`Word2VecModel`'s parameters on Spark ML's Word2Vec: skip-gram with hierarchical softmax
    (Spark has neither negative sampling nor the down-sampling of frequent tokens: `negative`
    and `sample` have no equivalent). `partitions` > 1 trains slices of the corpus apart and
    averages them each epoch: faster, and further from gensim."""

    name: ClassVar[str] = "word2vec"
    metric: ClassVar[str] = "angular"
    vector_size: int = 32
    window: int = 5
    epochs: int = 5
    min_count: int = 1
    min_plays: int = MIN_PLAYS
    partitions: int = 1
    step_size: float = 0.025  # gensim's default alpha

    @property
    def dims(self) -> int:
        return self.vector_size

    def fit(self, data: Dataset, *, seed: int) -> Vectors:
        from pyspark.ml.feature import Word2Vec
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions as F

        spark = _session()
        seqs = data.sequences
        plays = frames_of(spark, data).plays
        # ordered sequences in listening order; unordered ones (a user's tracks) shuffled, as
        # the local model does, with a window spanning the whole list (item2vec)
        # (a seeded hash, not rand(): Spark refuses a non-deterministic aggregate argument)
        key = F.col("pos") if seqs.ordered else F.xxhash64("seq", "pos", F.lit(seed))
        sentences = (
            plays.groupBy("seq")
            .agg(F.sort_array(F.collect_list(F.struct(key.alias("k"), "track"))).alias("s"))
            .select(F.transform("s", lambda x: x["track"].cast("string")).alias("tokens"))
            .where(F.size("tokens") >= 2)
        )
        longest = int(np.diff(seqs.indptr).max(initial=1))
        window = self.window if seqs.ordered else max(self.window, longest)
        w2v = Word2Vec(
            vectorSize=self.vector_size, windowSize=window, minCount=self.min_count,
            maxIter=self.epochs, numPartitions=self.partitions, stepSize=self.step_size,
            seed=seed, maxSentenceLength=max(1000, longest), inputCol="tokens",
            outputCol="vector",
        )  # fmt: skip
        model = w2v.fit(sentences)
        vectors = model.getVectors().select(
            F.col("word").cast("int").alias("id"),
            vector_to_array(F.col("vector"), "float32").alias("v"),
        )
        tracks, mask = collect_vectors(
            vectors, id_col="id", vec_col="v", n=data.items.n_tracks, dims=self.vector_size
        )
        log(f"  word2vec (Spark ML): {int(mask.sum())} tokens, window {window}")
        return word2vec_vectors(data, tracks, mask, min_plays=self.min_plays)


def _checkpoints(spark) -> None:  # type: ignore[no-untyped-def]
    """ALS checkpoints its factors every 10 iterations where there is a checkpoint directory;
    without one the lineage of 15 iterations grows until serialising a task overflows the
    stack. A cluster sets its own (spark.checkpoint.dir, on storage every executor reaches); a
    local run gets a temporary one."""
    sc = spark.sparkContext
    if sc.getCheckpointDir() is not None:
        return
    configured = sc.getConf().get("spark.checkpoint.dir")
    if configured:
        sc.setCheckpointDir(configured)
    elif sc.master.startswith("local"):
        import tempfile

        sc.setCheckpointDir(tempfile.mkdtemp(prefix="segue-spark-checkpoints-"))


def _blocks(spark) -> int:  # type: ignore[no-untyped-def]
    """ALS blocks: one per core of the cluster (Spark's default of 10 makes a small local run
    schedule many tiny tasks per iteration)."""
    return max(1, int(spark.sparkContext.defaultParallelism))
