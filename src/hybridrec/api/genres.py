"""The genres a request may name: the served catalog's (the spec lists them)."""

from __future__ import annotations

from hybridrec.errors import InvalidInputError


def genre_names(engine) -> list[str]:
    """The genres a request may name: the catalog's, as written or in lower case."""
    return sorted({*engine.genres, *(g.lower() for g in engine.genres)})


def check_genres(engine, genres) -> None:
    """422 for a genre the spec does not list (the engine alone would also take "HORROR")."""
    names = set(genre_names(engine))
    for genre in [genres] if isinstance(genres, str) else genres or []:
        if genre not in names:
            raise InvalidInputError(f"unknown genre {genre!r}; choose from {', '.join(engine.genres)}")
