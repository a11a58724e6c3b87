"""The explainer interface and the explanation it returns."""

from __future__ import annotations

from dataclasses import dataclass

from hybridrec.explain.evidence import Evidence


@dataclass
class Explanation:
    text: str
    explainer: str  # which explainer wrote it: "grounded", or the Gemini model's name
    cached: bool = False
    fallback_reason: str | None = None  # why the grounded sentence stands in for Gemini's

    def as_dict(self) -> dict:
        out = {"text": self.text, "explainer": self.explainer}
        if self.fallback_reason:
            out["fallback_reason"] = self.fallback_reason
        return out


class Explainer:
    name: str = "explainer"

    def explain(self, evidence: Evidence) -> Explanation:
        return self.explain_many([evidence])[0]

    def explain_many(self, evidences: list[Evidence]) -> list[Explanation]:
        raise NotImplementedError
