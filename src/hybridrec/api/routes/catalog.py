"""GET /users/{id}, /items/{id} and /items (the catalog, searched and paged)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from hybridrec.api.genres import check_genres
from hybridrec.api.schemas import ErrorResponse, ItemResponse, ItemsPage, UserResponse

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
