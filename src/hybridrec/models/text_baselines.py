"""Baselines that read a new user's own words (protocol C): what a language model has to beat.

Each lists films for a text and rates every film by its shrunk mean rating (it has no notion of a
user's taste in stars). Memory: a value per film, plus what each reads (genres, EASE^R weights as
bounded as the ``item_item`` term's, or a BM25 index over the film texts).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from hybridrec.data.context import FoldContext
from hybridrec.data.genres import GENRE_WORDS
from hybridrec.data.profiles import build_item_profiles
from hybridrec.data.queries import TextQuery, split_clauses
from hybridrec.models.baselines import Popularity
from hybridrec.models.evidence.item_item import ItemItem


class TextBaseline(Popularity):
    """Popularity (films most often liked in training; shrunk mean ratings), steered by the text."""

    reads_text = True

    def __init__(self, context: FoldContext, threshold: float, shrinkage: float):
        super().__init__(context, threshold, shrinkage)
        self.context = context

    def load_state_dict(self, state_dict, *args, **kwargs):
        """A bundle's fitted values, and what the text is read with fitted again from its context."""
        loaded = super().load_state_dict(state_dict, *args, **kwargs)
        self.fit(self.context)
        return loaded

    def _steer(self, query: TextQuery) -> np.ndarray:
        """(texts, films) scores from the text, 0 where it says nothing."""
        raise NotImplementedError

    def text_user_scores(self, query: TextQuery) -> tuple[np.ndarray, np.ndarray]:
        steer = self._steer(query)
        popularity = self.count.numpy() / max(float(self.count.max()), 1.0)  # in [0, 1]: breaks ties
        ratings = np.broadcast_to(self.rating_scale.clip(self.item_mean.numpy()), steer.shape).copy()
        return ratings, steer + popularity[None, :]

    @staticmethod
    def liking(query: TextQuery) -> list[str]:
        """Each text's liking clauses, joined."""
        return [". ".join(split_clauses(text)[0]) for text in query.texts]


class GenreKeywords(TextBaseline):
    """The most popular films of the genres the text names in liking clauses, by a keyword list
    (``hybridrec.data.genres``); the most popular films when it names none."""

    name = "genre_keywords"

    def _steer(self, query):
        genres = sorted(GENRE_WORDS)
        films = self.context.genre_matrix(genres)
        asked = np.zeros((len(query), len(genres)), dtype=np.float32)
        for row, text in enumerate(self.liking(query)):
            lowered = text.lower()
            for j, genre in enumerate(genres):
                words = (genre.lower(), *GENRE_WORDS[genre])
                asked[row, j] = any(re.search(rf"(?<![a-z]){re.escape(w)}", lowered) for w in words)
        return asked @ films.T  # how many asked genres each film has


class NamedFilmNeighbours(TextBaseline):
    """The films named in the text (found in the catalog) and their item-item neighbours: the sum of
    the named films' EASE^R rows (``reg``, ratings at or above ``min_rating``)."""

    name = "named_film_neighbours"

    def __init__(
        self,
        context: FoldContext,
        threshold: float,
        shrinkage: float,
        reg: float,
        min_rating: float,
        max_dense_items: int,
    ):
        super().__init__(context, threshold, shrinkage)
        self.item_item = ItemItem(reg, min_rating, max_dense_items)

    def fit(self, context):
        super().fit(context)
        self.item_item.fit(context)
        return self

    def _steer(self, query):
        scores = np.zeros((len(query), self.item_item.n_items))
        for row, named in enumerate(query.named):
            if len(named):
                scores[row] = self.item_item.rows(torch.as_tensor(named)).numpy().sum(0)
                scores[row] = scores[row] / max(np.abs(scores[row]).max(), 1e-12)  # popularity breaks ties
        return scores


class BM25Films(TextBaseline):
    """BM25 (bm25s) of the text's liking clauses against the film texts (title, year, genres)."""

    name = "bm25"

    def fit(self, context):
        import bm25s

        super().fit(context)
        self.retriever = bm25s.BM25()
        films = bm25s.tokenize(build_item_profiles(context.items).tolist(), show_progress=False)
        self.retriever.index(films, show_progress=False)
        return self

    def _steer(self, query):
        import bm25s

        n_films = len(self.context.items)
        scores = np.zeros((len(query), n_films))
        for row, text in enumerate(self.liking(query)):
            tokens = bm25s.tokenize([text], show_progress=False, return_ids=False)[0]
            if tokens:  # (a text of stopwords alone steers nothing)
                scores[row] = self.retriever.get_scores(tokens)
                scores[row] = scores[row] / max(scores[row].max(), 1e-12)
        return scores
