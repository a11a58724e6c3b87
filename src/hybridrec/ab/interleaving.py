"""Team-draft interleaving (Radlinski, Kurup and Joachims, CIKM 2008) of two ranked lists.

Each round the team with fewer picks so far (a coin flip on a tie) adds its best film not yet in the
list; every film remembers which team put it there, so a click credits that team. An impression is
won by the team whose films got more clicks. The coin flips come from a seeded generator, so the
same request interleaves the same way.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence


def team_draft(
    first: Sequence[Hashable], second: Sequence[Hashable], n: int, rng: random.Random
) -> list[tuple[Hashable, int]]:
    """Up to ``n`` (item, team) pairs, team 0 for ``first``'s picks and 1 for ``second``'s."""
    lists = (list(first), list(second))
    chosen: list[tuple[Hashable, int]] = []
    taken: set[Hashable] = set()
    picks = [0, 0]
    cursor = [0, 0]
    while len(chosen) < n:
        remaining = [
            team for team in (0, 1) if any(item not in taken for item in lists[team][cursor[team] :])
        ]
        if not remaining:
            break
        if len(remaining) == 1:
            team = remaining[0]
        elif picks[0] != picks[1]:
            team = 0 if picks[0] < picks[1] else 1
        else:
            team = rng.randrange(2)
        while lists[team][cursor[team]] in taken:
            cursor[team] += 1
        item = lists[team][cursor[team]]
        taken.add(item)
        chosen.append((item, team))
        picks[team] += 1
    return chosen


def credit(teams: Sequence[int], clicked: Sequence[bool]) -> int | None:
    """The winning team of one impression (0 or 1), or None for a tie (no clicks, or as many each)."""
    clicks = [0, 0]
    for team, click in zip(teams, clicked, strict=True):
        clicks[team] += bool(click)
    if clicks[0] == clicks[1]:
        return None
    return 0 if clicks[0] > clicks[1] else 1
