"""The request service behind both ``predict.py`` and the API: a top-N list for a known user or a
user described in words, with explanations on request, and single predicted ratings."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class RecommendationService:
    """One engine (a loaded bundle) and the explainer its lists are explained by."""

    engine: RecommendationEngine
    explainer: Explainer | None = field(default=None)

    @staticmethod
    def check_user_choice(user_id, user_text) -> None:
        """Exactly one of a known user or a description."""
        if (user_id is None) == (user_text is None):
            raise InvalidInputError('give exactly one of user_id=<id> or user_text="<description>"')

    def recommend(
        self,
        user_id: int | None = None,
        user_text: str | None = None,
        n: int = 10,
        exclude_seen: bool = True,
        genres=None,
        explain: bool = False,
    ) -> ExplainedList:
        self.check_user_choice(user_id, user_text)
        if user_id is not None:
            result = self.engine.recommend(user_id, n=n, exclude_seen=exclude_seen, genres=genres)
        else:
            result = self.engine.recommend_text(user_text, n=n, genres=genres)
        if not explain or not result.items:
            return ExplainedList(result)
        return ExplainedList(result, self.explain(result), self.explainer.name)

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
