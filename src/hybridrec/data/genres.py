"""Words people use for each MovieLens genre: to find the genres a user's text asks for."""

from __future__ import annotations

# words people use for each MovieLens genre (lower case)
GENRE_WORDS = {
    "Action": ("action", "fight", "explosions"),
    "Adventure": ("adventure", "quest", "expedition"),
    "Animation": ("animation", "animated", "cartoon", "pixar", "disney"),
    "Children's": ("children", "kids", "family", "child"),
    "Comedy": ("comedy", "comedies", "funny", "humor", "humour", "laugh"),
    "Crime": ("crime", "gangster", "heist", "mafia", "detective"),
    "Documentary": ("documentary", "documentaries", "true story"),
    "Drama": ("drama", "dramas", "emotional"),
    "Fantasy": ("fantasy", "magic", "wizard", "fairy"),
    "Film-Noir": ("film noir", "film-noir", "noir"),
    "Horror": ("horror", "scary", "slasher", "monster", "zombie"),
    "Musical": ("musical", "musicals", "singing", "broadway"),
    "Mystery": ("mystery", "mysteries", "whodunit", "puzzle"),
    "Romance": ("romance", "romantic", "love story", "romcom", "rom-com"),
    "Sci-Fi": (
        "sci-fi",
        "science fiction",
        "scifi",
        "sci fi",
        "space",
        "aliens",
        "alien",
        "robot",
        "robots",
        "future",
    ),
    "Thriller": ("thriller", "thrillers", "suspense", "tense"),
    "War": ("war", "battle", "soldier", "military"),
    "Western": ("western", "westerns", "cowboy", "cowboys"),
}
