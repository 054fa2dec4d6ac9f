"""The vector models a bundle is built with. Adding a model = one module + one line here."""

from __future__ import annotations

from indexes.models.als import AlsModel
from indexes.models.base import VectorModel
from indexes.models.content import ContentModel
from indexes.models.word2vec import Word2VecModel


def default_models(*, dims: int = 32, threads: int = 2) -> list[VectorModel]:
    return [
        AlsModel(factors=dims),
        Word2VecModel(vector_size=dims, workers=threads),
        ContentModel(components=dims),
    ]
