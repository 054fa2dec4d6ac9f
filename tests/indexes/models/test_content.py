"""The content model (tags): the vector model contract, and cold-start coverage."""

from __future__ import annotations

from indexes.datasets.shape import Dataset
from indexes.models.base import Vectors
from indexes.models.content import ContentModel
from tests.indexes.models.contract import VectorModelContract


class TestContent(VectorModelContract):
    model = ContentModel(components=16)

    def test_covers_cold_start(self, fitted: Vectors, tiny_data: Dataset) -> None:
        cold = tiny_data.track_plays() == 0
        assert cold.any()
        assert fitted.track_mask[cold].all()
