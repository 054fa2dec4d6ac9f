"""`segue build --engine spark`: the models and signals of a build computed on Spark."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from indexes.config import BuildConfig, SignalConfig
from indexes.datasets.shape import Dataset
from indexes.models.base import VectorModel
from indexes.models.content import ContentModel
from indexes.signals import Signals
from indexes.spark.models import SparkAlsModel, SparkWord2VecModel
from indexes.spark.session import spark_session, submitted
from indexes.spark.signals import spark_signals

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class SparkEngine:
    """ALS (MLlib), word2vec (Spark ML) and every signal on Spark; the content model (TF-IDF
    and SVD of the catalogue's tags: no plays, catalogue-sized) stays local."""

    master: str | None = None  # None: spark-submit's, else `default_master`
    default_master: str = "local[2]"
    conf: Mapping[str, str] = field(default_factory=dict)
    word2vec_partitions: int = 1
    name: str = "spark"
    _session: SparkSession | None = None
    _owned: bool = True  # False in a driver spark-submit started: its session outlives us

    @property
    def session(self) -> SparkSession:
        if self._session is None:
            self._owned = not submitted()
            self._session = spark_session(
                master=self.master, default_master=self.default_master, conf=self.conf
            )
        return self._session

    def models(self, config: BuildConfig) -> list[VectorModel]:
        self.session  # noqa: B018  # the models find the session running
        return [
            SparkAlsModel(factors=config.dims),
            SparkWord2VecModel(vector_size=config.dims, partitions=self.word2vec_partitions),
            ContentModel(components=config.dims),
        ]

    def signals(self, data: Dataset, *, config: SignalConfig, as_of: float | None) -> Signals:
        return spark_signals(self.session, data, config=config, as_of=as_of)

    def stop(self) -> None:
        """Stops the session this engine started (spark-submit's session runs on)."""
        if self._session is not None and self._owned:
            self._session.stop()
            self._session = None
