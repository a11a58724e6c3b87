"""The offline explainer: one sentence built from the evidence alone, so it can never invent a fact."""

from __future__ import annotations

from hybridrec.explain.base import Explainer, Explanation
from hybridrec.explain.evidence import Evidence

_GENRE_WORDS = {"Children's": "children's", "Film-Noir": "film-noir", "Sci-Fi": "sci-fi"}


def _genre_phrase(genres: list[str]) -> str:
    words = [_GENRE_WORDS.get(g, g.lower()) for g in genres]
    if not words:
        return "film"
    joined = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"{joined} film"


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def _titled(title: str, year) -> str:
    return f"*{title}*" + (f" ({year})" if year else "")


def _stars(value: float) -> str:
    return f"{value:g}★" if float(value).is_integer() else f"{value:.1f}★"


class GroundedExplainer(Explainer):
    name = "grounded"

    def sentence(self, ev: Evidence) -> str:
        film = f"*{ev.title}*"
        predicted = f"; predicted {ev.predicted_rating:.1f}★" if ev.predicted_rating is not None else ""
        if ev.anchors:
            # cite the films that share a genre with this one when there are any: "like them" must be true
            alike = [a for a in ev.anchors if a.shared_genres]
            cited = (alike or ev.anchors)[:2]
            ratings = {a.rating for a in cited}
            if len(ratings) == 1:
                rated = " and ".join(f"*{a.title}*" for a in cited) + f" {_stars(cited[0].rating)}"
            else:
                rated = " and ".join(f"*{a.title}* {_stars(a.rating)}" for a in cited)
            shared = [g for g in ev.genres if any(g in a.shared_genres for a in cited)]
            if shared:
                phrase = _genre_phrase(shared)
                like = "like them" if len(cited) > 1 else "like it"
                return (
                    f"Because you rated {rated} — {like}, {film} is {_article(phrase)} {phrase}{predicted}."
                )
            return f"Because you rated {rated}, and people who liked {'them' if len(cited) > 1 else 'it'} also rate {film} highly{predicted}."
        if ev.matched_phrases:
            quoted = " and ".join(f'"{p}"' for p in ev.matched_phrases[:3])
            phrase = _genre_phrase(ev.genres)
            return f"You mentioned {quoted} — {film} is {_article(phrase)} {phrase}{predicted}."
        phrase = _genre_phrase(ev.genres)
        if ev.user_text is not None:
            return f"{film} is {_article(phrase)} {phrase} that people with a profile like yours rate highly{predicted}."
        return f"{film} is {_article(phrase)} {phrase} that viewers with tastes like yours rate highly{predicted}."

    def explain_many(self, evidences: list[Evidence]) -> list[Explanation]:
        return [Explanation(self.sentence(ev), self.name) for ev in evidences]
