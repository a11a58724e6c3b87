"""A user's own words as the model reads them: the whole text embedded, the clauses that like and
those that dislike embedded apart, and the catalog's films the text names.

"I love comedies but I can't stand horror" should not pull horror films up because it names them:
a clause with a negative cue ("can't stand", "don't like", "hate", "no", …) counts against what it
names. Titles are found by fuzzy matching (rapidfuzz), so "Usual Suspects" finds "The Usual Suspects".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

# cues that turn a clause against what it names (matched as whole words, lower case)
NEGATIVE_CUES = (
    "can't stand",
    "cannot stand",
    "can not stand",
    "don't like",
    "do not like",
    "don't enjoy",
    "do not enjoy",
    "don't want",
    "do not want",
    "dislike",
    "hate",
    "loathe",
    "not for me",
    "not a fan",
    "no more",
    "please no",
    "avoid",
    "bores me",
    "bore me",
    "boring",
    "not into",
    "no ",
)
# a clause that says who the user is, as a profile writes it ("Age: 35 (thirties), gender: female,
# occupation: homemaker."): it states no taste, so it asks for no genre and names no film
_PROFILE_CLAUSE = r"age:\s*\d"
_IS_PROFILE = re.compile(_PROFILE_CLAUSE, flags=re.IGNORECASE)
_STATES_PROFILE = re.compile(rf"(?:^|[.!?;]\s+){_PROFILE_CLAUSE}", flags=re.IGNORECASE)
_CLAUSES = re.compile(r"(?<=[.!?;])\s+|\s*;\s*|,?\s+\bbut\b\s+|,?\s+\bexcept\b\s+", flags=re.IGNORECASE)
_NEGATIVE = re.compile("|".join(rf"(?<![a-z]){re.escape(cue)}" for cue in NEGATIVE_CUES), flags=re.IGNORECASE)


def split_clauses(text: str) -> tuple[list[str], list[str]]:
    """(liking clauses, disliking clauses) of a text: sentences and the parts joined by "but" or
    ";", a clause dislikes when it holds a negative cue. "except ..." dislikes what follows it; a
    profile's statement of age, gender and occupation is neither."""
    liked, disliked = [], []
    text = re.sub(r"\banything but\b", "anything, except", text, flags=re.IGNORECASE)
    pieces = re.split(r"(,?\s+\bexcept\b\s+)", text, flags=re.IGNORECASE)
    after_except = False
    for piece in pieces:
        if re.fullmatch(r",?\s+\bexcept\b\s+", piece, flags=re.IGNORECASE):
            after_except = True
            continue
        for clause in _CLAUSES.split(piece):
            clause = clause.strip(" .!?;,")
            if not clause or _IS_PROFILE.match(clause):
                continue
            (disliked if after_except or _NEGATIVE.search(clause) else liked).append(clause)
        after_except = False
    return liked, disliked


@dataclass
class TextQuery:
    """Users known only by their own words (or a profile text), as the model reads them."""

    texts: list[str] | None  # None: only embeddings are known (a demographic profile's vector)
    vectors: np.ndarray  # (n, dim) each whole text embedded
    liked: np.ndarray  # (n, dim) its liking clauses embedded together (the whole text when none)
    disliked: np.ndarray  # (n, dim) its disliking clauses embedded together (zeros when none)
    named: list[np.ndarray]  # per user: catalog indexes of the films a liking clause names
    named_disliked: list[np.ndarray]  # and of those a disliking clause names

    def __len__(self) -> int:
        return len(self.vectors)

    @classmethod
    def from_profiles(cls, vectors: np.ndarray) -> TextQuery:
        """Users known by their embedded profiles (age, gender, occupation): who they are, not what
        they ask for; no clause likes or dislikes, no film named."""
        vectors = np.asarray(vectors, dtype=np.float32)
        empty = [np.zeros(0, dtype=np.int64) for _ in range(len(vectors))]
        return cls(None, vectors, np.zeros_like(vectors), np.zeros_like(vectors), empty, list(empty))

    def rows(self, rows) -> TextQuery:
        """The query of some of its users."""
        rows = np.asarray(rows)
        texts = None if self.texts is None else [self.texts[r] for r in rows]
        return TextQuery(
            texts,
            self.vectors[rows],
            self.liked[rows],
            self.disliked[rows],
            [self.named[r] for r in rows],
            [self.named_disliked[r] for r in rows],
        )


class TitleFinder:
    """Finds catalog films named in a text: one-word titles where the word is written as a name
    (capitalised: "Kids", not "my kids"; "Aliens", not "aliens"), fuzzy matches (rapidfuzz's partial
    ratio at least ``min_score``) of longer ones; among films of one title, the most rated."""

    def __init__(self, titles: list[str], popularity: np.ndarray, min_score: float = 90.0):
        order = np.lexsort((np.arange(len(titles)), -np.asarray(popularity)))  # most rated first
        self.titles, self.min_score, self.index = [], min_score, []
        seen = set()
        for i in order:
            title = titles[i].lower()
            for key in {title, re.sub(r"^(the|a|an) ", "", title)}:  # "usual suspects" names it too
                if key not in seen and len(key) >= 4:
                    seen.add(key)
                    self.titles.append(key)
                    self.index.append(int(i))

    def find(self, text: str) -> np.ndarray:
        from rapidfuzz import fuzz, process

        lowered = text.lower()
        found = []
        for _, score, k in process.extract(
            lowered, self.titles, scorer=fuzz.partial_ratio, score_cutoff=self.min_score, limit=None
        ):
            title = self.titles[k]
            if (" " in title and len(title) >= 8) or _written_as_name(text, title):
                found.append((score, len(title), self.index[k]))
        found.sort(reverse=True)
        return np.array(list(dict.fromkeys(i for _, _, i in found))[:5], dtype=np.int64)


def _written_as_name(text: str, title: str) -> bool:
    """Whether ``title`` (lower case) stands in ``text`` as a whole word or words, capitalised."""
    pattern = rf"(?<![A-Za-z0-9]){re.escape(title)}(?![A-Za-z0-9])"
    return any(match[0][0].isupper() for match in re.finditer(pattern, text, flags=re.IGNORECASE))


def build_text_query(texts: list[str], embedder, titles: TitleFinder | None) -> TextQuery:
    """Split, embed (one call: the whole texts, then the liking and disliking clauses of the texts
    read apart: those that dislike something or state a profile) and find the films named. Without
    an embedder (a model that reads no text) the vectors are zeros."""
    splits = [split_clauses(text) for text in texts]
    profile = [bool(_STATES_PROFILE.search(text)) for text in texts]
    apart = [i for i in range(len(texts)) if splits[i][1] or profile[i]]
    # what a text read apart likes: its liking clauses; a text of dislikes alone is read whole
    # (its dislikes then weigh against it), a profile's statement alone likes nothing
    liking = [". ".join(splits[i][0]) or ("" if profile[i] else texts[i]) for i in apart]
    disliking = [". ".join(splits[i][1]) for i in apart]
    said = [t for t in (*liking, *disliking) if t]
    if embedder is None:
        vectors = np.zeros((len(texts) + len(said), 1), dtype=np.float32)
    else:
        vectors = np.asarray(embedder.embed([*texts, *said]), dtype=np.float32)
    whole, clauses = vectors[: len(texts)], iter(vectors[len(texts) :])
    liked, disliked = whole.copy(), np.zeros_like(whole)
    for rows, parts in ((liked, liking), (disliked, disliking)):
        for i, part in zip(apart, parts, strict=True):
            rows[i] = next(clauses) if part else 0.0
    named, named_disliked = [], []
    for liking_clauses, disliking_clauses in splits:
        named.append(
            titles.find(". ".join(liking_clauses)) if titles and liking_clauses else np.zeros(0, np.int64)
        )
        named_disliked.append(
            titles.find(". ".join(disliking_clauses))
            if titles and disliking_clauses
            else np.zeros(0, np.int64)
        )
    return TextQuery(list(texts), whole, liked, disliked, named, named_disliked)
