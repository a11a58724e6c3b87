"""The readers of every MovieLens format, on synthetic files that the library's generator writes in it."""

from __future__ import annotations

import io
import shutil
import zipfile
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from hybridrec.constants import ITEM_COL, RATING_COL, TIMESTAMP_COL, USER_COL
from hybridrec.data.movielens import MovieLensFormatError, RatingScale, load_movielens
from hybridrec.data.readers import READERS, REQUIRED_FILES, TOP_TAGS, read_dataset
from hybridrec.data.synthetic import (
    FORMATS,
    MIN_USER_RATINGS,
    main,
    make_archive,
    make_synthetic,
    write_files,
    write_synthetic,
)
from hybridrec.errors import ConfigError

NAMES = tuple(FORMATS)
SIZE = {"n_users": 40, "n_items": 120, "n_ratings": 1400}  # a few films stay unrated


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Each format's synthetic set and its folder; read-only by convention."""
    data_dir = tmp_path_factory.mktemp("formats")
    sets = {name: make_synthetic(name, **SIZE, seed=3, tag_share=0.1) for name in NAMES}
    return {name: (truth, write_files(data_dir, truth)) for name, truth in sets.items()}


def _expected_tags(truth) -> dict[int, tuple[str, ...]]:
    """Top genome tags by relevance where scored, else the tags most users applied (case-folded)."""
    expected = {}
    if truth.tags is not None:
        users = defaultdict(set)
        for user, item, tag in truth.tags[[USER_COL, ITEM_COL, "tag"]].itertuples(index=False):
            users[item, tag.strip().casefold()].add(user)
        by_item = defaultdict(list)
        for (item, tag), who in users.items():
            by_item[item].append((-len(who), tag))
        expected = {item: tuple(tag for _, tag in sorted(tags)[:TOP_TAGS]) for item, tags in by_item.items()}
    if truth.genome is not None:
        names = dict(truth.genome_tags.itertuples(index=False))
        for item, scores in truth.genome.groupby(ITEM_COL):
            best = sorted(zip(-scores["relevance"], scores["tag_id"], strict=True))[:TOP_TAGS]
            expected[item] = tuple(names[tag_id] for _, tag_id in best)
    return expected


@pytest.mark.parametrize("name", NAMES)
def test_every_reader_returns_what_the_generator_wrote(written, name):
    truth, folder = written[name]
    data = read_dataset(folder)

    def by_pair(frame):
        return frame.sort_values([USER_COL, ITEM_COL], ignore_index=True)

    pd.testing.assert_frame_equal(by_pair(data.ratings), by_pair(truth.ratings), check_dtype=False)
    if name != "ml-100k":  # the 100K reader keeps its int64 ids
        assert data.ratings.dtypes.to_dict() == {
            USER_COL: np.int32,
            ITEM_COL: np.int32,
            RATING_COL: np.float32,
            TIMESTAMP_COL: np.int64,
        }
    assert data.ratings.groupby(USER_COL).size().min() >= MIN_USER_RATINGS

    assert data.has_demographics == FORMATS[name].demographics
    pd.testing.assert_frame_equal(data.users, truth.users, check_dtype=False)

    items = data.items
    assert items[ITEM_COL].tolist() == truth.items[ITEM_COL].tolist()
    unrated = items[ITEM_COL].nunique() - data.ratings[ITEM_COL].nunique()  # films stay listed, rated or not
    assert (unrated > 0) == (FORMATS[name].unrated_share > 0)
    assert items["title"].tolist() == truth.items["title"].tolist()
    assert items["year"].astype("Int64").tolist() == truth.items["year"].astype("Int64").tolist()
    assert items["genres"].tolist() == truth.items["genres"].tolist()
    expected_tags = _expected_tags(truth)
    assert items["tags"].tolist() == [expected_tags.get(item, ()) for item in items[ITEM_COL]]
    assert any(items["tags"].map(len)) == (name not in ("ml-100k", "ml-1m"))

    if name == "ml-100k":
        assert data.genres == truth.genres
    else:  # the genres the films use, in order of first use
        assert data.genres == tuple(dict.fromkeys(g for film in truth.items["genres"] for g in film))
        assert set(data.genres) <= set(truth.genres)
    assert data.rating_scale == RatingScale.of(truth.ratings[RATING_COL])


def test_rating_scale_comes_from_the_data(written):
    assert read_dataset(written["ml-100k"][1]).rating_scale == RatingScale(1.0, 5.0, 1.0)
    assert read_dataset(written["ml-1m"][1]).rating_scale.step == 1.0
    assert read_dataset(written["ml-10M100K"][1]).rating_scale == RatingScale(0.5, 5.0, 0.5)


def test_titles_exercise_quoting_separators_and_encodings(written):
    """What makes the round trips above worth having: quotes, commas, colons, accents, moved articles."""
    for name in ("ml-1m", "ml-20m"):
        items = read_dataset(written[name][1]).items
        for mark in ('"', ", ", ":"):
            assert items["title"].str.contains(mark, regex=False).any(), (name, mark)
        assert not all(title.isascii() for title in items["title"])
        moved = items[items["title"].str.contains(r", (?:The|A|Les|Il) \(\d{4}\)$")]
        assert len(moved) and moved["display_title"].str.match(r"(?:The|A|Les|Il) ").all()
    titles = read_dataset(written["ml-10M100K"][1]).items["title"]
    assert any(not _fits_latin1(title) for title in titles)  # UTF-8 files hold what latin-1 cannot
    assert read_dataset(written["ml-20m"][1]).items["year"].isna().sum() == (
        written["ml-20m"][0].items["year"].isna().sum()
    )


def _fits_latin1(text):
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _edit_line(path, lineno, text, encoding="utf-8"):
    lines = path.read_bytes().split(b"\n")
    lines[lineno - 1] = text.encode(encoding)
    path.write_bytes(b"\n".join(lines))


def _line(path, lineno):
    return path.read_bytes().split(b"\n")[lineno - 1].decode("latin-1")


@pytest.fixture
def editable(written, tmp_path):
    def copy(name):
        folder = tmp_path / name
        shutil.copytree(written[name][1], folder)
        return folder

    return copy


@pytest.mark.parametrize(
    ("name", "file_name", "line", "text", "message"),
    [
        (
            "ml-1m",
            "ratings.dat",
            3,
            "1::2::5",
            r"ratings\.dat:3: expected 4 fields separated by '::', found 3",
        ),
        ("ml-1m", "ratings.dat", 3, "1::2::5::9::9", r"ratings\.dat:3: expected 4 fields .*, found 5"),
        ("ml-1m", "ratings.dat", 3, "1:2::5::978300760", r"ratings\.dat:3: expected 4 fields .*, found 3"),
        (
            "ml-1m",
            "ratings.dat",
            4,
            "1::abc::3::978300760",
            r"ratings\.dat:4: item_id must be an integer.*'abc'",
        ),
        ("ml-1m", "ratings.dat", 4, "1::2::::978300760", r"ratings\.dat:4: rating must be a number.*''"),
        (
            "ml-1m",
            "ratings.dat",
            5,
            "1::2::7::978300760",
            r"ratings\.dat:5: rating must be 0\.5\.\.5 .*got 7",
        ),
        ("ml-1m", "ratings.dat", 6, "99999::2::3::978300760", r"ratings\.dat:6: unknown user_id 99999"),
        ("ml-1m", "ratings.dat", 6, "1::99999::3::978300760", r"ratings\.dat:6: unknown item_id 99999"),
        ("ml-1m", "users.dat", 2, "2::X::25::4::12345", r"users\.dat:2: gender must be M or F, got 'X'"),
        ("ml-1m", "users.dat", 2, "2::M::17::4::12345", r"users\.dat:2: age must be an age code"),
        ("ml-1m", "users.dat", 3, "3::M::25::21::12345", r"users\.dat:3: occupation must be a code 0\.\.20"),
        ("ml-1m", "users.dat", 3, "3::M::25", r"users\.dat:3: expected 5 fields"),
        ("ml-1m", "movies.dat", 2, "2::Broken (1990)", r"movies\.dat:2: expected 3 fields"),
        ("ml-1m", "movies.dat", 2, "1::Again (1990)::Drama", r"movies\.dat:2: duplicate item_id 1"),
        ("ml-10M100K", "ratings.dat", 2, "1::2::3.25::978300760", r"ratings\.dat:2: rating must .*got 3\.25"),
        ("ml-10M100K", "ratings.dat", 2, "1::2::0::978300760", r"ratings\.dat:2: rating must .*got 0"),
        ("ml-10M100K", "tags.dat", 2, "1::2::funny", r"tags\.dat:2: expected 4 fields"),
        ("ml-10M100K", "tags.dat", 2, "1::x::funny::1", r"tags\.dat:2: item_id must be an integer"),
        (
            "ml-20m",
            "ratings.csv",
            1,
            "userId,movieId,stars,timestamp",
            r"ratings\.csv:1: expected the header",
        ),
        (
            "ml-20m",
            "ratings.csv",
            3,
            "1,2,3.5",
            r"ratings\.csv:3: expected 4 fields separated by ',', found 3",
        ),
        ("ml-20m", "ratings.csv", 3, "1,2,3.5,4,5", r"ratings\.csv:3: expected 4 fields .*, found 5"),
        ("ml-20m", "ratings.csv", 4, "1,2,3.5,abc", r"ratings\.csv:4: timestamp must be an integer.*'abc'"),
        ("ml-20m", "ratings.csv", 4, "1,2,NA,1", r"ratings\.csv:4: rating must be a number.*'NA'"),
        (
            "ml-20m",
            "ratings.csv",
            4,
            "1,99999999999,4.0,1",
            r"ratings\.csv:4: item_id must be an integer \(int32\)",
        ),
        ("ml-20m", "movies.csv", 2, '2,"Broken, The (1990)"', r"movies\.csv:2: expected 3 fields"),
        ("ml-20m", "tags.csv", 3, "1,2,funny,x", r"tags\.csv:3: timestamp must be an integer"),
        ("ml-25m", "genome-scores.csv", 3, "1,9999,0.5", r"genome-scores\.csv:3: unknown tag_id 9999"),
        ("ml-25m", "genome-scores.csv", 4, "1,1,1.5", r"genome-scores\.csv:4: relevance must be 0\.\.1"),
        ("ml-25m", "genome-tags.csv", 3, "x,funny", r"genome-tags\.csv:3: tag_id must be an integer"),
    ],
)
def test_a_bad_line_names_file_and_line(editable, name, file_name, line, text, message):
    folder = editable(name)
    _edit_line(folder / file_name, line, text, "latin-1" if name == "ml-1m" else "utf-8")
    with pytest.raises(MovieLensFormatError, match=message):
        read_dataset(folder)


@pytest.mark.parametrize(("name", "file_name"), [("ml-1m", "ratings.dat"), ("ml-20m", "ratings.csv")])
def test_a_repeated_rating_names_its_second_line(editable, name, file_name):
    folder = editable(name)
    path = folder / file_name
    _edit_line(path, 6, _line(path, 5))
    with pytest.raises(MovieLensFormatError, match=rf"{file_name}:6: user \d+ rated item \d+ twice"):
        read_dataset(folder)


def test_missing_files_are_named(editable):
    folder = editable("ml-20m")
    (folder / "genome-tags.csv").unlink()
    with pytest.raises(MovieLensFormatError, match=r"genome-tags\.csv: file not found"):
        read_dataset(folder)
    (folder / "genome-scores.csv").unlink()  # no genome at all: user tags for every film
    assert read_dataset(folder).items["tags"].map(len).sum() > 0
    (folder / "ratings.csv").unlink()
    with pytest.raises(MovieLensFormatError, match=r"ratings\.csv: file not found"):
        read_dataset(folder)


def test_tags_of_users_who_never_rated_are_read(written, editable):
    """10M has users who only tagged: their tags count, and they are no users of the set."""
    folder = editable("ml-10M100K")
    film = written["ml-10M100K"][0].items[ITEM_COL].iloc[0]
    with open(folder / "tags.dat", "a", encoding="utf-8") as handle:
        handle.write(f"999999::{film}::only tagged::1230000000\n")
    data = read_dataset(folder)
    assert 999999 not in data.user_index
    assert "only tagged" in data.items.set_index(ITEM_COL).loc[film, "tags"]


def test_registry_covers_every_format_and_refuses_unknown_folders(tmp_path):
    assert set(READERS) == set(REQUIRED_FILES) == set(FORMATS)
    with pytest.raises(ConfigError, match=r"no reader for a folder named 'ml-50m'"):
        read_dataset(tmp_path / "ml-50m")


def test_the_100k_splits_are_disjoint_folds(written):
    data = load_movielens(written["ml-100k"][1])
    everything = {tuple(r) for r in data.ratings[[USER_COL, ITEM_COL]].to_numpy()}
    tests = []
    for k in range(1, 6):
        base, test = (data.read_ratings_file(f"u{k}.{part}") for part in ("base", "test"))
        pairs = [{tuple(r) for r in frame[[USER_COL, ITEM_COL]].to_numpy()} for frame in (base, test)]
        assert pairs[0] | pairs[1] == everything and not pairs[0] & pairs[1]
        assert len(test) in (len(everything) // 5, len(everything) // 5 + 1)
        tests.append(pairs[1])
    assert set().union(*tests) == everything and sum(map(len, tests)) == len(everything)
    for split in ("ua", "ub"):
        assert data.read_ratings_file(f"{split}.test").groupby(USER_COL).size().eq(10).all()


def test_the_generator_is_seeded_and_skewed(tmp_path):
    first = write_synthetic(tmp_path / "a", "ml-25m", 40, 90, 1500, seed=5)
    second = write_synthetic(tmp_path / "b", "ml-25m", 40, 90, 1500, seed=5)
    other = write_synthetic(tmp_path / "c", "ml-25m", 40, 90, 1500, seed=6)
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name
    assert (first / "ratings.csv").read_bytes() != (other / "ratings.csv").read_bytes()
    assert make_archive("ml-1m", seed=2) == make_archive("ml-1m", seed=2)

    ratings = make_synthetic("ml-10M100K", 300, 400, 15_000, seed=1).ratings
    assert not ratings.duplicated([USER_COL, ITEM_COL]).any()
    per_user = ratings.groupby(USER_COL).size()
    assert per_user.min() >= MIN_USER_RATINGS and per_user.max() > 5 * per_user.median()
    per_film = ratings.groupby(ITEM_COL).size().sort_values(ascending=False)
    assert per_film.iloc[: len(per_film) // 10].sum() > 0.3 * len(ratings)  # a tenth of the films: 30%+


def test_the_generator_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="cannot make"):
        make_synthetic("ml-1m", 10, 100, 150)  # fewer than 20 ratings a user
    with pytest.raises(ValueError, match="unknown MovieLens format"):
        make_synthetic("ml-50m", 10, 100, 500)


def test_an_archive_unpacks_to_a_readable_folder(tmp_path):
    with zipfile.ZipFile(io.BytesIO(make_archive("ml-10M100K", seed=1))) as archive:
        assert {name.split("/")[0] for name in archive.namelist()} == {"ml-10M100K"}
        archive.extractall(tmp_path)
    assert read_dataset(tmp_path / "ml-10M100K").n_users == 40


def test_the_command_line_writes_a_set(tmp_path, capsys):
    main([str(tmp_path), "ml-1m", "--users", "30", "--items", "50", "--ratings", "900", "--seed", "4"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "ml-1m")
    assert len(read_dataset(tmp_path / "ml-1m").ratings) == 900
