"""Protocol C (new users in their own words) and the new-film protocol, on the synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hybridrec.constants import DESCRIBED_TOLD, ITEM_COL, RATING_COL, USER_COL
from hybridrec.data.described import described_user_fold
from hybridrec.data.descriptions import GENRE_PHRASES, STYLES, describe_users
from hybridrec.data.queries import TextQuery, TitleFinder, split_clauses
from hybridrec.data.splits import cold_item_fold, cold_user_fold
from hybridrec.errors import DataError


def test_protocol_c_tells_a_few_ratings_and_scores_only_the_rest(movielens, tmp_path):
    split, described = described_user_fold(movielens, 1, tmp_path)
    cold = cold_user_fold(movielens, 1)
    assert set(split.train.index) == set(cold.train.index) and set(split.cold_users) == set(cold.cold_users)
    told = described.told
    assert (told.groupby(USER_COL).size() <= DESCRIBED_TOLD).all()
    key = [USER_COL, ITEM_COL]
    assert split.test.merge(told[key], on=key).empty  # a told rating is never scored
    assert len(split.test) + len(told) == len(cold.test)
    texts = described.descriptions
    assert set(texts["style"]) == set(STYLES) and texts.groupby(USER_COL).size().eq(len(STYLES)).all()
    paraphrases = texts[texts["style"] == "paraphrase"]["text"].str.lower()
    for genre in GENRE_PHRASES:  # the paraphrased descriptions never name a genre literally
        literal = GENRE_PHRASES[genre][0]
        assert not paraphrases.apply(lambda t, literal=literal: any(w in t for w in literal)).any()
    # written once: a second read gives the same words; a file of another fold is refused
    again, reread = described_user_fold(movielens, 1, tmp_path)
    pd.testing.assert_frame_equal(reread.descriptions, described.descriptions)
    pd.testing.assert_frame_equal(again.test, split.test)
    path = next(tmp_path.iterdir()) / "fold1" / "told.csv"
    tampered = pd.read_csv(path)
    tampered.loc[0, USER_COL] = 999_999
    tampered.to_csv(path, index=False)
    with pytest.raises(DataError, match="remove it to write it again"):
        described_user_fold(movielens, 1, tmp_path)


def test_descriptions_say_only_what_the_told_ratings_say(movielens):
    told = pd.DataFrame({USER_COL: [1, 1, 1], ITEM_COL: [1, 2, 3], RATING_COL: [5.0, 5.0, 1.0]})
    texts = describe_users(told, movielens.users, movielens.items, seed=3)
    liked = set(movielens.items.set_index(ITEM_COL).loc[[1, 2], "genres"].sum())
    literal = texts[texts["style"] == "literal"]["text"].item().lower()
    names = [GENRE_PHRASES[g][0] for g in GENRE_PHRASES if g in liked]
    assert any(any(n in literal for n in forms) for forms in names)
    assert texts.equals(describe_users(told, movielens.users, movielens.items, seed=3))  # seeded


def test_clauses_that_refuse_count_against_what_they_name():
    assert split_clauses("I love comedies but I can't stand horror.") == (
        ["I love comedies"],
        ["I can't stand horror"],
    )
    assert split_clauses("Give me anything but westerns") == (["Give me anything"], ["westerns"])
    assert split_clauses("I only watch horror films.") == (["I only watch horror films"], [])


def test_a_profile_statement_is_who_the_user_is_not_what_they_ask_for():
    """ "Age: ..., gender: ..., occupation: ..." (a profile's words) likes nothing: only the clauses
    after it are read for tastes, and a text of it alone, or a profile's vector, asks for nothing."""
    from hybridrec.data.queries import build_text_query
    from hybridrec.embedders.hashing import HashingEmbedder

    profile = "Age: 13 (teens), gender: male, occupation: student."
    assert split_clauses(f"{profile} I love animated films.") == (["I love animated films"], [])
    assert split_clauses(profile) == ([], [])
    embedder = HashingEmbedder(dim=16)
    texts = [f"{profile} I love animated films.", profile, "I love animated films."]
    query = build_text_query(texts, embedder, None)
    np.testing.assert_allclose(query.vectors, embedder.embed(texts))
    np.testing.assert_allclose(query.liked[0], embedder.embed(["I love animated films"])[0])
    assert not query.liked[1].any() and not query.disliked.any()
    np.testing.assert_allclose(query.liked[2], query.vectors[2])
    assert not TextQuery.from_profiles(embedder.embed([profile])).liked.any()


def test_named_films_are_found_in_the_catalog_fuzzily():
    finder = TitleFinder(["The Usual Suspects", "Toy Story", "Heat", "Toy Story"], np.array([5, 9, 3, 1]))
    assert finder.find("I loved Usual Suspects and toy story").tolist() == [0, 1]
    assert finder.find("the theatre was cold").tolist() == []  # "heat" only as a whole word
    # a one-word title is a name only when written as one: not "the heat of summer", "Heat" is
    assert finder.find("I love the heat of summer and edge-of-the-seat suspense").tolist() == []
    assert finder.find("I loved Heat.").tolist() == [2]
    query = TextQuery.from_profiles(np.ones((2, 3)))
    assert [len(n) for n in query.named] == [0, 0] and not query.disliked.any()


def test_new_film_folds_hold_out_whole_films(movielens):
    folds = [cold_item_fold(movielens, k) for k in range(1, 6)]
    films = [set(f.cold_items) for f in folds]
    assert set().union(*films) == set(movielens.item_index.ids) and sum(map(len, films)) == movielens.n_items
    for split in folds:
        assert not set(split.train[ITEM_COL]) & set(split.cold_items)
        assert set(split.test[ITEM_COL]) <= set(split.cold_items)


def test_genre_baselines_follow_their_definitions(movielens):
    from hybridrec.data.context import build_fold_context
    from hybridrec.models.baselines import GenreMean, GenrePopularity

    split = cold_item_fold(movielens, 1)
    context = build_fold_context(movielens, split.train)
    mean = GenreMean(context).fit(context)
    popular = GenrePopularity(context, threshold=4.0).fit(context)
    items = context.items.set_index(ITEM_COL)
    train = split.train.assign(genres=split.train[ITEM_COL].map(items["genres"])).explode("genres")
    genre_mean = train.groupby("genres")[RATING_COL].mean()
    liked = train[train[RATING_COL] >= 4].groupby("genres").size()
    films_per_genre = items["genres"].explode().value_counts()
    for position in (0, 7, 20):
        genres = [g for g in context.items["genres"][position] if g != "unknown"]
        expected = np.mean([genre_mean.get(g, context.global_mean) for g in genres])
        assert mean.predict(np.array([0]), np.array([position]))[0] == pytest.approx(np.clip(expected, 1, 5))
        popularity = np.mean([liked.get(g, 0) / films_per_genre[g] for g in genres])
        assert popular.rank_scores(np.array([0]))[0, position] == pytest.approx(popularity)
