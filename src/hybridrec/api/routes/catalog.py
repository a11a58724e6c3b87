from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from hybridrec.api.schemas import ErrorResponse, ItemResponse, UserResponse

router = APIRouter(tags=["catalog"], responses={404: {"model": ErrorResponse, "description": "unknown id"}})

UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a user id")]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a film id")]


@router.get("/users/{user_id}", response_model=UserResponse, summary="A user's profile and top-rated films")
async def get_user(request: Request, user_id: UserId) -> UserResponse:
    return UserResponse(**request.app.state.engine.user_info(user_id))


@router.get("/items/{item_id}", response_model=ItemResponse, summary="A film's metadata")
async def get_item(request: Request, item_id: ItemId) -> ItemResponse:
    return ItemResponse(**request.app.state.engine.item_info(item_id))
