"""Request and response models: bounds here make bad input a 422 before any code runs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

MAX_TEXT = 2000  # the schema's bound; the service's own limit (settings.max_text_chars) may be lower
MAX_N = 100
MAX_BATCH = 100  # users per batch request
MAX_LIKED = 50  # films a new user may start from
SESSION_ID = r"^[A-Za-z0-9_-]{1,128}$"  # a client's session: assigns cold-start requests to a variant


def _integral(value):
    """JSON Schema's integer holds 50.0 too: a float with no fraction is read as the integer it is
    (float fields take integers anyway), in a whole body."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _integral_numbers(cls, values):
        return _integral(values)


def _one_of(*names: str, examples: list[dict], optional: tuple[str, ...] = ()):
    """The OpenAPI of a request that takes exactly one of ``names``: ``oneOf`` of their ``required``;
    they and the ``optional`` fields are left out, never null (validators enforce both)."""

    def extra(schema: dict) -> None:
        schema["oneOf"] = [{"required": [name]} for name in names]
        schema["examples"] = examples
        for name in (*names, *optional):
            prop = schema["properties"][name]
            members = [m for m in prop.pop("anyOf", []) if m.get("type") != "null"]
            prop.update(members[0] if members else {})
            prop.pop("default", None)

    return extra


def _exactly_one(values, names: tuple[str, ...]):
    if isinstance(values, dict):
        nulls = [name for name in names if name in values and values[name] is None]
        if nulls:
            raise ValueError(f"{nulls[0]} must not be null: leave it out")
        if sum(name in values for name in names) != 1:
            raise ValueError(f"give exactly one of {', '.join(names[:-1])} or {names[-1]}")
    return values


def _user_id():
    return Field(None, ge=1, le=2**31 - 1, description="a known user")


def _not_blank(text: str | None) -> str | None:
    if text is not None and not text.strip():
        raise ValueError("user_text is empty")
    return text


# a text holding nothing but white space (Python's: Unicode's and the separators U+001C-U+001F) is
# refused with a readable message; the spec says so with a pattern
UserText = Annotated[str | None, AfterValidator(_not_blank)]


def _user_text():
    return Field(
        None,
        min_length=1,
        max_length=MAX_TEXT,
        json_schema_extra={"pattern": r"[^\s\x1c-\x1f]"},
        description="or a new user described in words (cold start)",
    )


class PredictRequest(_Request):
    user_id: int | None = _user_id()
    user_text: UserText = _user_text()
    item_id: int = Field(..., ge=1, le=2**31 - 1)

    @model_validator(mode="before")
    @classmethod
    def exactly_one_user(cls, values):
        return _exactly_one(values, ("user_id", "user_text"))

    model_config = ConfigDict(
        **_Request.model_config,
        json_schema_extra=_one_of(
            "user_id",
            "user_text",
            examples=[
                {"user_id": 1, "item_id": 50},
                {"user_text": "Age: 33, gender: M, occupation: engineer. Loves sci-fi.", "item_id": 50},
            ],
        ),
    )


class PredictResponse(BaseModel):
    rating: float = Field(..., description="predicted rating, on the model's scale")
    item_id: int
    title: str
    user_id: int | None = None
    cold_start: bool

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"rating": 4.42, "item_id": 50, "title": "Star Wars", "user_id": 1, "cold_start": False}
            ]
        }
    )


class LikedItem(_Request):
    item_id: int = Field(..., ge=1, le=2**31 - 1)
    rating: float | None = Field(
        None,
        ge=0.5,
        le=5,
        description="how much they liked it, 0.5-5 stars whatever the model's scale (4 and above: liked; "
        "2 and below: disliked); none: they liked it",
    )


class RecommendRequest(_Request):
    user_id: int | None = _user_id()
    user_text: UserText = _user_text()
    liked_items: list[LikedItem] | None = Field(
        None, min_length=1, max_length=MAX_LIKED, description="or a new user known by films they rated"
    )
    n: int = Field(10, ge=1, le=MAX_N, description="length of the list")
    exclude_seen: bool = Field(True, description="leave out films the user already rated")
    genres: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        None, max_length=19, description="keep only films of these genres"
    )
    explain: bool = Field(False, description="add a one- or two-sentence reason per film")
    session_id: str | None = Field(
        None,
        pattern=SESSION_ID,
        description="the client's session: assigns a request without user_id to an experiment's variant",
    )

    @model_validator(mode="before")
    @classmethod
    def exactly_one_user(cls, values):
        if isinstance(values, dict) and "genres" in values and values["genres"] is None:
            raise ValueError("genres must not be null: leave it out")
        return _exactly_one(values, ("user_id", "user_text", "liked_items"))

    model_config = ConfigDict(
        **_Request.model_config,
        json_schema_extra=_one_of(
            "user_id",
            "user_text",
            "liked_items",
            optional=("genres",),
            examples=[
                {"user_id": 1, "n": 10},
                {"liked_items": [{"item_id": 50, "rating": 5}, {"item_id": 181}], "n": 5},
                {
                    "user_text": "Age: 33, gender: M, occupation: software engineer. Enjoys sci-fi and action movies.",
                    "n": 5,
                    "genres": ["Sci-Fi"],
                    "explain": True,
                },
            ],
        ),
    )


class ExplanationOut(BaseModel):
    text: str
    explainer: str = Field(..., description="which explainer wrote it: 'grounded' or a Gemini model")


class RecommendedItem(BaseModel):
    item_id: int
    title: str
    year: int | None
    genres: list[str]
    score: float | None = Field(..., description="predicted rating, on the model's scale")
    explanation: ExplanationOut | None = None
    variant: str | None = Field(
        None, description="the experiment's variant that put the film here (null: no experiment)"
    )


class RecommendResponse(BaseModel):
    items: list[RecommendedItem]
    cold_start: bool
    explainer: str | None = Field(None, description="the explainer used, when explanations were asked for")
    variant: str | None = Field(
        None,
        description="the experiment's variant that served the list ('<a>+<b>' when two are interleaved); "
        "null when no experiment runs, or the request has neither user_id nor session_id",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "item_id": 172,
                            "title": "The Empire Strikes Back",
                            "year": 1980,
                            "genres": ["Action", "Adventure", "Sci-Fi"],
                            "score": 4.38,
                            "explanation": {
                                "text": "Because you rated *Star Wars* 5★ — like it, *The Empire Strikes Back* is an action and sci-fi film; predicted 4.4★.",
                                "explainer": "grounded",
                            },
                        }
                    ],
                    "cold_start": False,
                    "explainer": "grounded",
                }
            ]
        }
    )


class TextCache(BaseModel):
    entries: int = Field(description="new users' texts whose embeddings are held now")
    size: int = Field(description="the most it holds (settings.text_cache_size)")


class HealthResponse(BaseModel):
    status: str
    bundle_id: str
    model: str | None
    embedder: str | None
    n_users: int
    n_items: int
    cv_metrics: dict[str, float] = Field(default_factory=dict)
    text_cache: TextCache | None = Field(None, description="absent when the model reads no text")


class RatedItem(BaseModel):
    item_id: int
    title: str
    year: int | None
    genres: list[str]
    rating: float


class UserResponse(BaseModel):
    user_id: int
    age: int | None = Field(..., description="null where the data set has no demographics (10M and later)")
    gender: str | None
    occupation: str | None
    n_ratings: int
    top_rated: list[RatedItem]


class ItemResponse(BaseModel):
    item_id: int
    title: str
    year: int | None
    genres: list[str]


class SimilarItem(ItemResponse):
    similarity: float = Field(
        ..., description="cosine of the two films in the item tower's space (shared genres without towers)"
    )


class SimilarItemsResponse(BaseModel):
    item: ItemResponse
    similar: list[SimilarItem] = Field(..., description="the nearest films, nearest first; the film left out")


class ErrorResponse(BaseModel):
    detail: str | list


class BatchRecommendRequest(_Request):
    user_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        ..., min_length=1, max_length=MAX_BATCH, description="known users"
    )
    n: int = Field(10, ge=1, le=MAX_N, description="length of each list")
    exclude_seen: bool = Field(True, description="leave out films each user already rated")
    genres: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(
        None, max_length=19, description="keep only films of these genres"
    )

    model_config = ConfigDict(
        **_Request.model_config, json_schema_extra={"examples": [{"user_ids": [1, 2, 3], "n": 5}]}
    )


class UserList(BaseModel):
    user_id: int
    items: list[RecommendedItem]


class BatchRecommendResponse(BaseModel):
    results: list[UserList]


class ItemsPage(BaseModel):
    items: list[ItemResponse]
    total: int = Field(..., description="films matching, over all pages")
    offset: int
    limit: int


class VariantShare(BaseModel):
    name: str
    share: float = Field(..., description="the share of users (and sessions) assigned to it")


class ExperimentResponse(BaseModel):
    name: str | None = Field(None, description="null when no experiment runs")
    variants: list[VariantShare] = Field(default_factory=list)
    interleaving: bool = False


class FeedbackRequest(_Request):
    user_id: int | None = Field(None, ge=1, le=2**31 - 1, description="a known user")
    session_id: str | None = Field(None, pattern=SESSION_ID, description="or a client's session")
    item_id: int = Field(..., ge=1, le=2**31 - 1)
    event: Literal["click", "watch", "rating", "dismiss"]
    value: float | None = Field(
        None, description="the stars of a rating (only for, and required by, 'rating')"
    )
    variant: str | None = Field(
        None, max_length=64, description="the variant of the film, as the list gave it; null: the user's own"
    )

    @model_validator(mode="after")
    def consistent(self):
        if (self.user_id is None) == (self.session_id is None):
            raise ValueError("give exactly one of user_id or session_id")
        if (self.event == "rating") != (self.value is not None):
            raise ValueError("value is required for a rating, and only for a rating")
        return self

    model_config = ConfigDict(
        **_Request.model_config,
        json_schema_extra={
            "examples": [
                {"user_id": 1, "item_id": 50, "event": "click", "variant": "default"},
                {"session_id": "a1b2c3", "item_id": 50, "event": "rating", "value": 4},
            ],
            "allOf": [  # what the validator enforces, stated in the schema
                {
                    "oneOf": [
                        {
                            "required": ["user_id"],
                            "properties": {"user_id": {"type": "integer"}, "session_id": {"type": "null"}},
                        },
                        {
                            "required": ["session_id"],
                            "properties": {"session_id": {"type": "string"}, "user_id": {"type": "null"}},
                        },
                    ]
                },
                {
                    "oneOf": [
                        {
                            "required": ["value"],
                            "properties": {"event": {"const": "rating"}, "value": {"type": "number"}},
                        },
                        {
                            "properties": {
                                "event": {"enum": ["click", "watch", "dismiss"]},
                                "value": {"type": "null"},
                            }
                        },
                    ]
                },
            ],
        },
    )


class FeedbackResponse(BaseModel):
    event_id: int = Field(..., description="the event's id in the log; it is committed when this answers")
