"""What every evidence term shares: its interface, who it is asked about, and ratings as sparse rows.

A term is fitted on a fold's fitting ratings (``fit``), then, when it reads them, on the trained
towers (``attach``), and is asked either for ratings (``rate``) or for list scores (``score``). Its
``audience`` says whom it serves: users with fitting ratings (asked by user index), or users known
only by a text (asked through their nearest known users, ``TextUsers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from hybridrec.data.context import FoldContext, Interactions
from hybridrec.data.queries import TextQuery
from hybridrec.models.history import row_entries

if TYPE_CHECKING:
    from hybridrec.models.ensemble import TowerEnsemble

KNOWN, TEXT = "known", "text"  # audiences: users with fitting ratings; users known only by a text
RATINGS, LISTS = "ratings", "lists"  # what a term adds to

# entries of a films x films block computed at once when a film-film matrix is too big to hold
# (float64: 128 MB)
BLOCK_ENTRIES = 1 << 24
# entries of a (users x films x rated films) block of whole-row neighbour means (float64: 32 MB)
ROW_BLOCK_ENTRIES = 1 << 22


@dataclass
class TextUsers:
    """Users known only by a text: the text as read (``TextQuery``), and their nearest known users,
    as positions among the known users (``NearestKnownUsers.known``) with the similarity weight of
    each (negatives count 0)."""

    query: TextQuery
    neighbours: torch.Tensor  # (n, k) long
    weights: torch.Tensor  # (n, k) float

    def __len__(self) -> int:
        return len(self.neighbours)


class EvidenceTerm:
    """One source of evidence beside the towers. Subclasses set ``audience`` and ``kind``, and
    implement ``rate`` (ratings) or ``score`` (lists)."""

    audience: ClassVar[str]
    kind: ClassVar[str]

    def fit(self, context: FoldContext, state: dict[str, np.ndarray] | None = None) -> None:
        """Learn from the fold's fitting ratings; ``state`` (read from a bundle) replaces what is
        costly to learn."""

    def state(self) -> dict[str, np.ndarray]:
        """What ``fit`` learned that is costly to learn again (saved in a bundle)."""
        return {}

    def attach(self, view: RecommenderView) -> None:
        """Derive what depends on the trained towers (after every change of their weights)."""

    def rate(self, users, items: torch.Tensor | None = None) -> torch.Tensor:
        """Ratings of aligned (user, film) pairs, or (``items`` None) of every film per user."""
        raise NotImplementedError

    def score(self, users) -> torch.Tensor:
        """(n users, n films) list scores: higher means recommend first."""
        raise NotImplementedError

    def confidence(self, users) -> torch.Tensor | None:
        """(n users,) how much of the term's weight each user's scores deserve (None: all of it);
        a term reading a user's text says how much the text told it."""
        return None


class RecommenderView:
    """What a term may read of the recommender it joins: the towers, the known users (the order that
    ``TextUsers`` positions refer to), and their blended ratings."""

    towers: TowerEnsemble
    known_users: torch.Tensor  # indexes of the users with fitting ratings, ascending

    def rate_known_rows(self, users: torch.Tensor) -> torch.Tensor:
        """(n, n films) ratings of known users (by index), as the recommender rates them."""
        raise NotImplementedError


class SparseRows:
    """A (rows x columns) matrix in CSR form: each row's columns and one value per entry.
    Memory: one index and one value per entry, plus one pointer per row."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, n_cols: int):
        order = np.lexsort((cols, rows))
        self.crow = torch.from_numpy(np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))]))
        self.col = torch.from_numpy(np.asarray(cols, dtype=np.int64)[order])
        self.values = torch.from_numpy(np.asarray(values)[order])
        self.n_rows, self.n_cols = n_rows, n_cols

    def _entries(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(owner, entry): for every entry of the given rows, the position of its row in ``rows``."""
        return row_entries(self.crow, rows)

    def dense(self, rows: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
        """(len(rows), n_cols): the given rows written out, zero where a row has no entry
        (``values``: other values per entry, in entry order)."""
        values = self.values if values is None else values
        owner, entry = self._entries(rows)
        out = values.new_zeros(len(rows), self.n_cols)
        out[owner, self.col[entry]] = values[entry]
        return out

    def mask(self, rows: torch.Tensor) -> torch.Tensor:
        """(len(rows), n_cols) boolean: where the given rows have an entry."""
        owner, entry = self._entries(rows)
        out = torch.zeros(len(rows), self.n_cols, dtype=torch.bool)
        out[owner, self.col[entry]] = True
        return out

    def columns(self, row: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(columns, values) of one row."""
        lo, hi = int(self.crow[row]), int(self.crow[row + 1])
        return self.col[lo:hi], self.values[lo:hi]

    def weighted_sum(self, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(n, n_cols): for each i, the sum over j of ``weights[i, j]`` times row ``rows[i, j]``."""
        n, k = rows.shape
        owner, entry = self._entries(rows.reshape(-1))
        out = torch.zeros(n, self.n_cols, dtype=weights.dtype)
        contribution = self.values[entry].to(weights.dtype) * weights.reshape(-1)[owner]
        return out.index_put_((owner // k, self.col[entry]), contribution, accumulate=True)


class FilmSimilarity:
    """Films' similarity to films, as ``rated_film_means`` reads it (``rows`` and ``columns``).

    Dense (films², ``dtype``) for a catalog of up to ``max_dense_items`` films. Above, each film's
    ``neighbours`` most similar films with a positive similarity (the only ones that weigh in a
    neighbour mean), held by row and by column: 2 x films x neighbours entries, computed a block of
    films at a time (block x films). Keeping every film gives the dense form's means."""

    def __init__(self, dense: torch.Tensor | None, by_row: SparseRows | None, by_column: SparseRows | None):
        self.dense, self.by_row, self.by_column = dense, by_row, by_column

    @classmethod
    def of(cls, rows_of, n_items: int, max_dense_items: int, neighbours: int, dtype) -> FilmSimilarity:
        """From ``rows_of(films)``: those films' similarity to every film (a numpy array)."""
        if n_items <= max_dense_items:
            return cls(torch.from_numpy(rows_of(np.arange(n_items)).astype(dtype, copy=False)), None, None)
        return cls.sparse(*top_neighbours(rows_of, n_items, neighbours), n_items, dtype)

    @classmethod
    def sparse(cls, films, neighbours, values, n_items: int, dtype) -> FilmSimilarity:
        values = values.astype(dtype, copy=False)
        return cls(
            None,
            SparseRows(films, neighbours, values, n_items, n_items),
            SparseRows(neighbours, films, values, n_items, n_items),
        )

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], n_items: int, dtype) -> FilmSimilarity:
        if "similarity" in state:
            return cls(torch.from_numpy(state["similarity"].astype(dtype, copy=False)), None, None)
        return cls.sparse(state["films"], state["neighbours"], state["values"], n_items, dtype)

    def state(self) -> dict[str, np.ndarray]:
        if self.dense is not None:
            return {"similarity": self.dense.numpy()}
        rows = self.by_row
        films = np.repeat(np.arange(rows.n_rows), np.diff(rows.crow.numpy()))
        return {"films": films, "neighbours": rows.col.numpy(), "values": rows.values.numpy()}

    def rows(self, films: torch.Tensor) -> torch.Tensor:
        """(len(films), n films): these films' similarity to every film."""
        return self.dense[films] if self.dense is not None else self.by_row.dense(films)

    def columns(self, films: torch.Tensor) -> torch.Tensor:
        """(n films, len(films)): every film's similarity to these films."""
        return self.dense[:, films] if self.dense is not None else self.by_column.dense(films).T


def top_neighbours(rows_of, n_items: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(film, neighbour, similarity) of each film's ``k`` most similar films with a positive
    similarity, from ``rows_of(films)`` called a block of films at a time."""
    block = max(1, BLOCK_ENTRIES // max(n_items, 1))
    parts = []
    for at in range(0, n_items, block):
        films = np.arange(at, min(at + block, n_items))
        similarity = rows_of(films)
        if k < n_items:
            top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(n_items), similarity.shape)
        values = np.take_along_axis(similarity, top, axis=1)
        keep = values > 0
        parts.append((np.repeat(films, keep.sum(1)), top[keep], values[keep]))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    films, neighbours, values = (np.concatenate(p) for p in zip(*parts, strict=True))
    return films, neighbours, values


def user_rows(fit: Interactions, values: np.ndarray, users: np.ndarray | None = None) -> SparseRows:
    """The fitting ratings' ``values`` as sparse rows: one row per user, or per user of ``users``
    (rows in that order; the other users' ratings are left out)."""
    if users is None:
        return SparseRows(fit.users, fit.items, values, fit.n_users, fit.n_items)
    position = np.full(fit.n_users, -1)
    position[users] = np.arange(len(users))
    keep = position[fit.users] >= 0
    return SparseRows(position[fit.users[keep]], fit.items[keep], values[keep], len(users), fit.n_items)


def neighbour_means(
    similarity: torch.Tensor,
    rated: torch.Tensor | None,
    values: torch.Tensor,
    k: int,
    shrinkage: float = 0.0,
) -> torch.Tensor:
    """For aligned rows (a film's ``similarity`` to every film, a user's ``rated`` mask and ``values``
    over the films; the last dimension runs over films): the mean of ``values`` over the ``k`` films
    most similar among those rated, weighted by similarity (positive ones only), over the weights'
    sum plus ``shrinkage`` (0 where no rated film is similar). ``rated`` None: every column is a
    rated film."""
    scores = similarity if rated is None else similarity.masked_fill(~rated, float("-inf"))
    weights, films = scores.topk(min(k, scores.shape[-1]), dim=-1)
    weights = weights.clamp_min(0.0)
    total = weights.sum(-1) + shrinkage
    mean = (weights * values.gather(-1, films)).sum(-1) / total.clamp_min(1e-12)
    return torch.where(total > 0, mean, torch.zeros_like(mean))


def rated_film_means(
    rows: SparseRows,
    users: torch.Tensor,
    items: torch.Tensor | None,
    similarity_rows,
    similarity_columns,
    k: int,
    shrinkage: float,
    values: torch.Tensor | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """``neighbour_means`` over each user's rated films (``rows``: their values per film), for aligned
    (user, film) pairs, or (``items`` None) for every film of each user's row.

    ``similarity_rows(films)`` gives those films' similarity to every film; ``similarity_columns(films)``
    every film's similarity to those films. Pairs are done a chunk at a time (memory: chunk x films);
    a whole row reads the columns of the user's own films only (films x their films)."""
    values = rows.values if values is None else values
    if items is not None:
        parts = [
            neighbour_means(
                similarity_rows(items[at : at + chunk]),
                rows.mask(users[at : at + chunk]),
                rows.dense(users[at : at + chunk], values),
                k,
                shrinkage,
            )
            for at in range(0, len(users), chunk)
        ]
        return torch.cat(parts) if parts else values.new_zeros(0)
    return _whole_row_means(rows, users, similarity_columns, k, shrinkage, values)


def _whole_row_means(rows: SparseRows, users, similarity_columns, k, shrinkage, values) -> torch.Tensor:
    """``rated_film_means`` for every film of each user's row. Users go in groups of similar history
    length, a group at once: every film's similarity to the group's rated films, laid out as (users,
    films, longest history) and padded with similarity -inf (weight 0), at most ``ROW_BLOCK_ENTRIES``
    entries per group (one user at least)."""
    means = values.new_zeros(len(users), rows.n_cols)
    lengths = rows.crow[users + 1] - rows.crow[users]
    order = torch.argsort(lengths, stable=True)
    order = order[lengths[order] > 0]
    at = 0
    while at < len(order):
        end = at + 1
        while (
            end < len(order) and (end - at + 1) * rows.n_cols * int(lengths[order[end]]) <= ROW_BLOCK_ENTRIES
        ):
            end += 1
        group = users[order[at:end]]
        owner, entry = rows._entries(group)
        padded = torch.full((len(group), int(lengths[order[end - 1]])), len(entry), dtype=torch.long)
        padded[owner, entry - rows.crow[group][owner]] = torch.arange(len(entry))
        columns = similarity_columns(rows.col[entry])
        columns = torch.cat([columns, columns.new_full((rows.n_cols, 1), float("-inf"))], dim=1)
        rated_values = torch.cat([values[entry], values.new_zeros(1)])[padded]
        means[order[at:end]] = neighbour_means(
            columns[:, padded].transpose(0, 1),
            None,
            rated_values[:, None, :].expand(-1, rows.n_cols, -1),
            k,
            shrinkage,
        ).to(means.dtype)
        at = end
    return means


def standardise(scores: torch.Tensor) -> torch.Tensor:
    """Each row to mean 0 and std 1 (a constant row, e.g. an empty history, to zeros)."""
    centred = scores - scores.mean(1, keepdim=True)
    std = centred.std(1, keepdim=True)
    return torch.where(std > 0, centred / std.clamp_min(1e-12), torch.zeros_like(centred))
