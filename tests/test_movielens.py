"""Parsing MovieLens files: types, index maps, and errors that name the file and line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import synthetic

from hybridrec.constants import ITEM_COL, RATING_COL, USER_COL
from hybridrec.data.movielens import IdIndex, MovieLensFormatError, display_title, load_movielens


def test_parsed_frames_are_typed_and_complete(movielens):
    tables = synthetic.make_tables()
    assert len(movielens.ratings) == len(tables["u.data"].splitlines())
    assert movielens.n_users == synthetic.N_USERS
    assert movielens.n_items == len(synthetic.GROUPS) * synthetic.N_ITEMS_PER_GROUP
    assert str(movielens.ratings[RATING_COL].dtype) == "float32"
    assert movielens.ratings[[USER_COL, ITEM_COL]].dtypes.eq(np.int64).all()
    assert movielens.genres == synthetic.GENRES
    assert set(movielens.users["gender"]) <= {"M", "F"}


def test_items_have_title_year_genres(movielens):
    star = movielens.items.set_index(ITEM_COL).loc[1]
    assert star["title"].startswith("Star Story (")
    assert star["display_title"] == "Star Story"
    assert int(star["year"]) == 1970 + 7 % 28
    assert star["genres"] == ("Action", "Sci-Fi")
    assert movielens.genre_matrix.shape == (movielens.n_items, len(movielens.genres))
    assert movielens.genre_matrix.sum(axis=1).min() >= 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Usual Suspects, The (1995)", "The Usual Suspects"),
        ("Postino, Il (1994)", "Il Postino"),
        ("Toy Story (1995)", "Toy Story"),
        (
            "Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)",
            "Shanghai Triad (Yao a yao yao dao waipo qiao)",
        ),
        ("unknown", "unknown"),
    ],
)
def test_display_title(raw, expected):
    assert display_title(raw) == expected


def test_index_maps_are_contiguous_and_invertible(movielens):
    users = movielens.user_index
    assert np.array_equal(users.to_index(users.ids), np.arange(len(users)))
    some = movielens.ratings[ITEM_COL].to_numpy()[:50]
    assert np.array_equal(movielens.item_index.to_id(movielens.item_index.to_index(some)), some)
    with pytest.raises(KeyError, match="unknown id 999999"):
        users.to_index([1, 999999])
    assert 1 in users and 999999 not in users


def test_id_index_sorts_nothing_it_is_given():
    index = IdIndex(np.array([10, 20, 30]))
    assert index.to_index([30, 10]).tolist() == [2, 0]


@pytest.fixture
def editable_copy(synthetic_data_dir, tmp_path):
    folder = tmp_path / "ml-100k"
    shutil.copytree(synthetic_data_dir / "ml-100k", folder)
    return folder


def _replace_line(path, lineno, text):
    lines = path.read_text(encoding="latin-1").splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")


@pytest.mark.parametrize(
    ("file_name", "line", "text", "message"),
    [
        ("u.data", 3, "1\t2\t5", r"u\.data:3: expected 4 fields"),
        ("u.data", 4, "1\t2\t7\t880000000", r"u\.data:4: rating must be 1\.\.5, got '7'"),
        ("u.data", 5, "1\tabc\t3\t880000000", r"u\.data:5: item_id must be an integer"),
        ("u.data", 6, "99999\t2\t3\t880000000", r"u\.data:6: unknown user_id 99999"),
        ("u.user", 2, "2|30|X|engineer|12345", r"u\.user:2: gender must be M or F"),
        ("u.item", 2, "2|Broken (1990)|01-Jan-1990||url", r"u\.item:2: expected 24 fields"),
    ],
)
def test_bad_files_name_file_and_line(editable_copy, file_name, line, text, message):
    _replace_line(editable_copy / file_name, line, text)
    with pytest.raises(MovieLensFormatError, match=message):
        load_movielens(editable_copy)


def test_unknown_item_in_a_fold_names_file_and_line(editable_copy):
    data = load_movielens(editable_copy)
    _replace_line(editable_copy / "u2.test", 3, "1\t9999\t4\t880000000")
    with pytest.raises(MovieLensFormatError, match=r"u2\.test:3: unknown item_id 9999"):
        data.read_ratings_file("u2.test")


def test_missing_file_is_reported(editable_copy):
    (editable_copy / "u.user").unlink()
    with pytest.raises(MovieLensFormatError, match=r"u\.user: file not found"):
        load_movielens(editable_copy)


@pytest.mark.integration
def test_real_movielens_counts(real_movielens):
    assert len(real_movielens.ratings) == 100_000
    assert (real_movielens.n_users, real_movielens.n_items) == (943, 1682)
    assert real_movielens.ratings.groupby(USER_COL).size().min() >= 20
    items = real_movielens.items.set_index(ITEM_COL)
    assert items.loc[1, "display_title"] == "Toy Story"
    assert items.loc[1, "genres"] == ("Animation", "Children's", "Comedy")
    assert items.loc[267, "title"] == "unknown" and items.loc[267, "genres"] == ("unknown",)
    assert items["year"].isna().sum() == 1  # only item 267 has neither a title year nor a date
