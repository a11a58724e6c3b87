"""The genre-intent suite: does a new user's stated taste steer their list?

For each genre with enough films, a new user says they love it (in its own name, and in paraphrases
that avoid the name), and that they love it but can't stand another genre. Reported per genre: the
share of the top 10 in the asked genre, the share in the refused genre, and how much the lists of
different genres overlap. The wordings here are the suite's own, not those of protocol C's
descriptions (``data/descriptions.py``), so the suite does not reward learning that generator.
"""

from __future__ import annotations

import itertools

import numpy as np

from hybridrec.inference.engine import RecommendationEngine

# genre -> (its names, paraphrases that avoid them)
ASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Action": (
        ("action films",),
        ("big loud blockbusters full of fistfights and chases", "movies with shootouts and stunts"),
    ),
    "Adventure": (
        ("adventure films",),
        ("epic journeys to faraway lands and lost treasure", "explorers braving jungles and high seas"),
    ),
    "Animation": (
        ("animated films",),
        ("hand-drawn cartoon features", "stories told with drawings and puppets instead of actors"),
    ),
    "Children's": (
        ("children's films",),
        ("movies I can watch with my six-year-old", "gentle stories for young kids"),
    ),
    "Comedy": (("comedies",), ("films that make me laugh out loud", "silly, hilarious movies")),
    "Crime": (
        ("crime films",),
        ("mobsters, heists and crooked cops", "stories about criminals and the underworld"),
    ),
    "Documentary": (
        ("documentaries",),
        ("non-fiction films about real events", "films that record real life and real people"),
    ),
    "Drama": (
        ("dramas",),
        ("serious, emotional stories about people's lives", "moving films that make me cry"),
    ),
    "Fantasy": (
        ("fantasy films",),
        ("magic, wizards and enchanted kingdoms", "fairy-tale worlds with dragons"),
    ),
    "Film-Noir": (
        ("film noir",),
        ("black-and-white 1940s detective stories", "cynical private eyes and femmes fatales"),
    ),
    "Horror": (("horror films",), ("scary movies that give me nightmares", "monsters, ghosts and slashers")),
    "Musical": (
        ("musicals",),
        ("films where the characters sing and dance", "Broadway shows on the big screen"),
    ),
    "Mystery": (("mysteries",), ("whodunits and puzzling murders", "detectives solving a baffling case")),
    "Romance": (("romantic films",), ("love stories", "couples falling in love")),
    "Sci-Fi": (("science fiction",), ("space travel, aliens and robots", "stories set in the far future")),
    "Thriller": (
        ("thrillers",),
        ("suspenseful edge-of-your-seat films", "tense stories of danger and suspense"),
    ),
    "War": (
        ("war films",),
        ("soldiers and battles of World War II", "movies about combat and the battlefield"),
    ),
    "Western": (
        ("westerns",),
        ("cowboys, outlaws and the wild frontier", "gunfights in dusty frontier towns"),
    ),
}


def _share(items, genre: str) -> float:
    """The share of a list's films in ``genre``."""
    return float(np.mean([genre in r.genres for r in items])) if items else 0.0


def asked_shares(engine: RecommendationEngine, asks: dict[str, list[str]], n: int = 10) -> dict[str, float]:
    """Per genre, the mean share of the top ``n`` in that genre over texts that ask for it (wordings
    from elsewhere, e.g. written by someone who saw neither this suite nor the genres' glossary)."""
    return {
        genre: float(np.mean([_share(engine.recommend_text(text, n=n).items, genre) for text in texts]))
        for genre, texts in asks.items()
        if genre in engine.genres
    }


def genre_intent(engine: RecommendationEngine, min_films: int = 20, n: int = 10) -> dict:
    """The suite's numbers for one engine (a loaded bundle that reads text)."""
    counts = dict(zip(engine.genres, engine.genre_matrix().sum(0).astype(int).tolist(), strict=True))
    genres = [g for g in ASKS if counts.get(g, 0) >= min_films]

    def listed(text: str) -> list:
        return engine.recommend_text(text, n=n).items

    per_genre, tops = {}, {}
    for k, genre in enumerate(genres):
        names, paraphrases = ASKS[genre]
        literal = [listed(f"I love {name}.") for name in names]
        paraphrased = [listed(f"I love {words}.") for words in paraphrases]
        refused_genre = genres[(k + len(genres) // 2) % len(genres)]  # a genre far down the list
        refusing = listed(f"I love {names[0]}, but I can't stand {ASKS[refused_genre][0][0]}.")
        tops[genre] = [r.item_id for r in literal[0]]
        per_genre[genre] = {
            "films": counts[genre],
            "literal": float(np.mean([_share(items, genre) for items in literal])),
            "paraphrase": float(np.mean([_share(items, genre) for items in paraphrased])),
            "refusing_asked": _share(refusing, genre),
            "refused_genre": refused_genre,
            "refused_share": _share(refusing, refused_genre),
        }
    overlaps = [len(set(tops[a]) & set(tops[b])) / n for a, b in itertools.combinations(genres, 2)]
    summary = {
        "asked_share": float(np.mean([v["literal"] for v in per_genre.values()])),
        "paraphrase_share": float(np.mean([v["paraphrase"] for v in per_genre.values()])),
        "refused_share": float(np.mean([v["refused_share"] for v in per_genre.values()])),
        "overlap_between_genres": float(np.mean(overlaps)) if overlaps else 0.0,
    }
    summary["paraphrase_to_literal"] = summary["paraphrase_share"] / max(summary["asked_share"], 1e-12)
    return {"summary": summary, "genres": per_genre}
