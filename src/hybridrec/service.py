"""The request service behind both ``predict.py`` and the API: a top-N list for a known user or a
user described in words, with explanations on request, and single predicted ratings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from hybridrec.errors import InvalidInputError
from hybridrec.explain.base import Explainer, Explanation
from hybridrec.explain.evidence import collect_evidence
from hybridrec.inference.engine import RecommendationEngine, RecommendationList


@dataclass
class ExplainedList:
    """A recommendation list and, when asked for, one explanation per film."""

    result: RecommendationList
    explanations: list[Explanation] | None = None
    explainer: str | None = None  # the explainer's name, when explanations were asked for

    def rows(self) -> list[dict]:
        rows = [r.as_dict() for r in self.result.items]
        for row, explanation in zip(rows, self.explanations or [], strict=False):
            row["explanation"] = explanation.as_dict()
        return rows


@dataclass(frozen=True)
class RecommendQuery:
    """What a list is asked for: a known user or a description, how many films, which genres."""

    user_id: int | None
    user_text: str | None
    liked_items: list | None  # or (item id, rating or None) pairs of a new user's films
    n: int
    exclude_seen: bool
    genres: object  # genre names: a list, or one comma-separated string, or None
    explain: bool

    @classmethod
    def of(cls, values: Mapping) -> RecommendQuery:
        """From any mapping holding the fields (a CLI config, a request body); the users absent are None."""
        return cls(**{f.name: values.get(f.name) for f in fields(cls)})


@dataclass
class RecommendationService:
    """One engine (a loaded bundle) and the explainer its lists are explained by."""

    engine: RecommendationEngine
    explainer: Explainer | None = field(default=None)
    defaults: Mapping = field(default_factory=dict)  # what ``ask`` fills in (predict.yaml's values)

    @staticmethod
    def check_user_choice(user_id, user_text, liked_items=None) -> None:
        """Exactly one of a known user, a description, or the films a new user rated."""
        if sum(x is not None for x in (user_id, user_text, liked_items)) != 1:
            raise InvalidInputError('give exactly one of user_id=<id> or user_text="<description>"')

    def recommend(self, query: RecommendQuery) -> ExplainedList:
        self.check_user_choice(query.user_id, query.user_text, query.liked_items)
        if query.user_id is not None:
            result = self.engine.recommend(
                query.user_id, n=query.n, exclude_seen=query.exclude_seen, genres=query.genres
            )
        elif query.liked_items is not None:
            result = self.engine.recommend_films(query.liked_items, n=query.n, genres=query.genres)
        else:
            result = self.engine.recommend_text(query.user_text, n=query.n, genres=query.genres)
        if not query.explain or not result.items:
            return ExplainedList(result)
        return ExplainedList(result, self.explain(result), self.explainer.name)

    def ask(self, **fields) -> ExplainedList:
        """``recommend`` with keyword arguments, the rest from ``defaults``:
        ``service.ask(user_id=1, n=5)``, ``service.ask(user_text="...", explain=True)``."""
        return self.recommend(RecommendQuery.of({**self.defaults, **fields}))

    def explain(self, result: RecommendationList) -> list[Explanation]:
        """One explanation per recommended film, grounded in the user's history or text."""
        if self.explainer is None:
            raise InvalidInputError("this service has no explainer")
        evidences = [
            collect_evidence(
                self.engine,
                r.item_id,
                user_id=result.user_id,
                user_text=result.user_text,
                predicted_rating=r.score,
            )
            for r in result.items
        ]
        return self.explainer.explain_many(evidences)

    def predict(self, item_id: int, user_id: int | None = None, user_text: str | None = None) -> float:
        """The predicted rating of one film for a known user or a user described in words."""
        self.check_user_choice(user_id, user_text)
        if user_id is not None:
            return self.engine.predict(user_id, item_id)
        return self.engine.predict_text(user_text, item_id)
