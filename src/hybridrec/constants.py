"""One home for column names, the relevance threshold, protocol constants and metric keys."""

# Column names shared by every DataFrame in the project.
USER_COL = "user_id"
ITEM_COL = "item_id"
RATING_COL = "rating"
TIMESTAMP_COL = "timestamp"
PREDICTION_COL = "prediction"
TRAIN_RATINGS_COL = "train_ratings"  # how many fitting ratings the user has (segment analyses)

# A rating at or above this counts as "liked" (relevance in the top-N protocols), on every MovieLens
# scale (1..5 whole stars, 0.5..5 half stars). The scale itself is the data set's: MovieLens.rating_scale.
RELEVANCE_THRESHOLD = 4.0
# Default length of a recommendation list and of the ranking metrics.
TOP_K = 10

# MovieLens 100K: the official archive and its md5 (also listed in ../shared/data/README.md).
ML100K_NAME = "ml-100k"
ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_MD5 = "0e33842e24a9c977be4e0107933c0723"
ML100K_REQUIRED_FILES = (
    "u.data",
    "u.user",
    "u.item",
    "u.genre",
    *(f"u{k}.{part}" for k in range(1, 6) for part in ("base", "test")),
)
CANONICAL_FOLDS = (1, 2, 3, 4, 5)  # 100K ships them (u1..u5); other sets: seeded folds of their ratings
RANDOM90_FOLDS = 10  # cv=random90: the test part is fold 1 of a seeded 10-fold split of the ratings
COLD_USER_FOLDS = 5
COLD_USER_SEED = 0  # protocol B: numpy.random.default_rng(0).permutation(user ids)
COLD_ITEM_SEED = 1  # the new-film protocol: numpy.random.default_rng(1).permutation(film ids)
# protocol C: each cold user tells this many of their ratings (seeded), in their own words
DESCRIBED_TOLD = 5
DESCRIBED_SEED = 0
