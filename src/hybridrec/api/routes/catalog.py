"""GET /users/{id}, /items/{id}, /items/{id}/similar and /items (the catalog, searched and paged)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from hybridrec.api.genres import check_genres
from hybridrec.api.schemas import (
    MAX_N,
    ErrorResponse,
    ItemResponse,
    ItemsPage,
    SimilarItem,
    SimilarItemsResponse,
    UserResponse,
)

router = APIRouter(tags=["catalog"], responses={404: {"model": ErrorResponse, "description": "unknown id"}})

UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a user id")]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a film id")]


@router.get(
    "/users/{user_id}",
    response_model=UserResponse,
    operation_id="get_user",
    summary="A user's profile and top-rated films",
)
async def get_user(request: Request, user_id: UserId) -> UserResponse:
    return UserResponse(**request.app.state.engine.user_info(user_id))


@router.get(
    "/items/{item_id}", response_model=ItemResponse, operation_id="get_item", summary="A film's metadata"
)
async def get_item(request: Request, item_id: ItemId) -> ItemResponse:
    return ItemResponse(**request.app.state.engine.item_info(item_id))


@router.get(
    "/items/{item_id}/similar",
    response_model=SimilarItemsResponse,
    operation_id="similar_items",
    summary="The films nearest to a film, by the model's item vectors",
)
async def similar_items(
    request: Request,
    item_id: ItemId,
    n: Annotated[int, Query(ge=1, le=MAX_N, description="how many films")] = 10,
) -> SimilarItemsResponse:
    engine = request.app.state.engine
    item = ItemResponse(**engine.item_info(item_id))  # unknown ids: 404 before any work
    # off the event loop: the first call computes the item tower's output for the whole catalog
    nearest = await run_in_threadpool(engine.similar_items, item_id, n)
    return SimilarItemsResponse(item=item, similar=[SimilarItem(**row) for row in nearest])


@router.get(
    "/items",
    response_model=ItemsPage,
    operation_id="list_items",
    summary="Films of the catalog, searched and paged",
)
async def list_items(
    request: Request,
    q: Annotated[str | None, Query(min_length=1, max_length=100, description="words of the title")] = None,
    genre: Annotated[str | None, Query(min_length=1, max_length=40, description="a genre")] = None,
    year_from: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    year_to: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ItemsPage:
    engine = request.app.state.engine
    check_genres(engine, genre)
    found = engine.search_items(q, genre, year_from, year_to)
    page = engine.item_index.to_id(found[offset : offset + limit])
    items = [ItemResponse(**engine.item_info(int(item_id))) for item_id in page]
    return ItemsPage(items=items, total=len(found), offset=offset, limit=limit)
