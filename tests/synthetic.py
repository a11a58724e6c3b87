"""A tiny MovieLens-100K-format data set with real structure, written by the tests themselves.

Users belong to taste groups (sci-fi fans, children's-animation fans, drama lovers, …) and rate
films of their group high and others low, so models have something learnable within a second.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import lightning as L
import numpy as np

from hybridrec.data.synthetic import ML_GENRES

GENRES = ("unknown", *ML_GENRES)  # 100K's u.genre
OCCUPATIONS = (
    "engineer",
    "student",
    "educator",
    "artist",
    "programmer",
    "writer",
    "retired",
    "none",
    "other",
)
# taste group -> (genres of its films, words for its titles)
GROUPS = {
    "scifi": (
        ("Sci-Fi", "Action"),
        ["Star", "Galaxy", "Robot", "Alien", "Orbit", "Nebula", "Cyborg", "Planet"],
    ),
    "kids": (
        ("Animation", "Children's"),
        ["Puppy", "Bunny", "Toy", "Fairy", "Teddy", "Kitten", "Balloon", "Pony"],
    ),
    "drama": (
        ("Drama", "Romance"),
        ["Letters", "Autumn", "Promise", "Garden", "River", "Widow", "Silence", "Bride"],
    ),
    "horror": (
        ("Horror", "Thriller"),
        ["Scream", "Crypt", "Shadow", "Blood", "Fear", "Ghoul", "Night", "Grave"],
    ),
    "comedy": (("Comedy",), ["Oops", "Party", "Prank", "Goofy", "Blunder", "Zany", "Wacky", "Silly"]),
}
N_ITEMS_PER_GROUP = 12
N_USERS = 60
RATINGS_PER_USER = (20, 32)


def make_tables(seed: int = 7) -> dict[str, str]:
    """The text of every file, keyed by file name (u.data, u.item, u.user, u1.base … u5.test)."""
    rng = np.random.default_rng(seed)
    groups = list(GROUPS)
    items = []  # (item_id, title, year, genres, group)
    for g, group in enumerate(groups):
        genres, words = GROUPS[group]
        for j in range(N_ITEMS_PER_GROUP):
            item_id = g * N_ITEMS_PER_GROUP + j + 1
            title = f"{words[j % len(words)]} {('Story', 'Returns', 'Forever')[j // len(words)]}"
            if group == "drama" and j == 0:
                title = "Usual Letters, The"  # exercises the trailing-article rule
            year = 1970 + (item_id * 7) % 28
            items.append((item_id, title, year, genres, group))
    n_items = len(items)
    item_group = np.array([groups.index(it[4]) for it in items])

    users, ratings = [], []
    timestamp = 880000000
    for user_id in range(1, N_USERS + 1):
        group = groups[(user_id - 1) % len(groups)]
        age = int(rng.integers(12, 70))
        gender = "F" if rng.random() < 0.4 else "M"
        occupation = OCCUPATIONS[int(rng.integers(len(OCCUPATIONS)))]
        users.append((user_id, age, gender, occupation, f"{10000 + user_id:05d}"))
        n = int(rng.integers(*RATINGS_PER_USER))
        own = np.flatnonzero(item_group == groups.index(group))
        other = np.flatnonzero(item_group != groups.index(group))
        n_own = min(len(own), n // 2)
        chosen = np.concatenate(
            [rng.choice(own, n_own, replace=False), rng.choice(other, n - n_own, replace=False)]
        )
        for idx in chosen:
            liked = item_group[idx] == groups.index(group)
            base = 4.4 if liked else 2.2
            rating = int(np.clip(round(base + rng.normal(0, 0.7)), 1, 5))
            timestamp += int(rng.integers(1, 5000))
            ratings.append((user_id, items[idx][0], rating, timestamp))

    ratings = np.array(ratings, dtype=np.int64)
    # canonical-style folds: each user's ratings dealt into 5 disjoint test sets
    fold_of = np.empty(len(ratings), dtype=np.int64)
    for user_id in range(1, N_USERS + 1):
        rows = np.flatnonzero(ratings[:, 0] == user_id)
        fold_of[rows] = rng.permutation(np.arange(len(rows)) % 5)

    def rating_lines(rows: np.ndarray) -> str:
        return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows)

    files = {
        "u.data": rating_lines(ratings[rng.permutation(len(ratings))]),
        "u.user": "".join(f"{u}|{a}|{g}|{o}|{z}\n" for u, a, g, o, z in users),
        "u.genre": "".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)) + "\n",
        "u.occupation": "".join(f"{o}\n" for o in OCCUPATIONS),
        "u.info": f"{len(users)} users\n{n_items} items\n{len(ratings)} ratings\n",
        "u.item": "".join(
            f"{i}|{t} ({y})|01-Jan-{y}||http://example.invalid/{i}|"
            + "|".join("1" if g in genres else "0" for g in GENRES)
            + "\n"
            for i, t, y, genres, _ in items
        ),
    }
    for k in range(1, 6):
        order = np.lexsort((ratings[:, 1], ratings[:, 0]))
        sorted_rows, sorted_folds = ratings[order], fold_of[order]
        files[f"u{k}.base"] = rating_lines(sorted_rows[sorted_folds != k - 1])
        files[f"u{k}.test"] = rating_lines(sorted_rows[sorted_folds == k - 1])
    return files


def write_dataset(data_dir: Path, name: str = "ml-100k", seed: int = 7) -> Path:
    """Write the synthetic set as ``data_dir/name/`` and return that folder."""
    folder = Path(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, text in make_tables(seed).items():
        (folder / file_name).write_text(text, encoding="latin-1")
    return folder


def make_archive(name: str = "ml-100k", seed: int = 7) -> bytes:
    """The synthetic set zipped the way the official archive is (one top folder)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file_name, text in make_tables(seed).items():
            archive.writestr(f"{name}/{file_name}", text.encode("latin-1"))
    return buffer.getvalue()


class Touch(L.Callback):
    """A training callback for tests: writes ``path`` when training ends."""

    def __init__(self, path: str):
        self.path = path

    def on_train_end(self, trainer, pl_module) -> None:
        Path(self.path).write_text("trained")


class InterruptOnce(L.Callback):
    """A training callback for tests: the first time a fit whose folder ends with ``folder`` ends
    epoch ``epoch``, stop the process (SIGKILL when ``kill``, else an exception), before that
    epoch's checkpoint is written; ``marker`` remembers that it happened, so the same config runs
    through the second time."""

    def __init__(self, marker: str, folder: str, epoch: int, kill: bool):
        self.marker, self.folder, self.epoch, self.kill = Path(marker), folder, epoch, kill

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        here = Path(trainer.default_root_dir).as_posix().endswith(self.folder)
        if not here or trainer.current_epoch + 1 != self.epoch or self.marker.exists():
            return
        self.marker.write_text("interrupted")
        if self.kill:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("interrupted by the test")
