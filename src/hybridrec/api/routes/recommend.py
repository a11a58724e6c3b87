"""POST /predict, /recommend and /recommend/batch: known users inline, new users (an embedding) off the
event loop."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hybridrec.ab.assignment import unit_key
from hybridrec.api.genres import check_genres
from hybridrec.api.schemas import (
    BatchRecommendRequest,
    BatchRecommendResponse,
    ErrorResponse,
    PredictRequest,
    PredictResponse,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
    UserList,
)
from hybridrec.service import RecommendQuery

log = logging.getLogger(__name__)
router = APIRouter(
    tags=["recommendations"],
    responses={
        404: {"model": ErrorResponse, "description": "unknown user or item"},
        422: {"model": ErrorResponse, "description": "invalid request"},
    },
)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


@router.post(
    "/predict",
    response_model=PredictResponse,
    operation_id="predict",
    summary="Predicted rating of one film for one user",
)
async def predict(request: Request, body: PredictRequest) -> PredictResponse:
    service = request.app.state.service
    if body.user_id is not None:
        rating = service.predict(body.item_id, user_id=body.user_id)
    else:
        log.debug("predict for user_text=%r", _short(body.user_text))
        async with request.app.state.cold_start.slot():
            rating = await run_in_threadpool(service.predict, body.item_id, None, body.user_text)
    info = service.engine.item_info(body.item_id)
    return PredictResponse(
        rating=round(rating, 4),
        item_id=info["item_id"],
        title=info["title"],
        user_id=body.user_id,
        cold_start=body.user_id is None,
    )


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    operation_id="recommend",
    summary="Top-N films for a known user, a new user in words, or a new user's films",
)
async def recommend(request: Request, body: RecommendRequest) -> RecommendResponse:
    service = request.app.state.service
    if body.user_text is not None:
        log.debug("recommend for user_text=%r", _short(body.user_text))
    check_genres(service.engine, body.genres)
    ask = body.model_dump()
    if body.liked_items is not None:
        ask["liked_items"] = [(liked.item_id, liked.rating) for liked in body.liked_items]
    query = RecommendQuery.of(ask)
    experiment = getattr(request.app.state, "experiment", None)
    unit = unit_key(body.user_id, body.session_id) if experiment is not None else None
    if unit is None:  # no experiment, or nobody to assign: the served bundle, as always
        listed = await _listed(request, service, query, body)
        items = [RecommendedItem(**row) for row in listed.rows()]
        return RecommendResponse(items=items, cold_start=listed.result.cold_start, explainer=listed.explainer)
    lists = {
        name: await _listed(request, experiment.services[name], query, body)
        for name in experiment.variants_for(unit)
    }
    shown = experiment.show(unit, lists, body.n)
    experiment.log_exposures(unit, shown)
    items = [RecommendedItem(**row, variant=v) for row, v in zip(shown.rows, shown.variants, strict=True)]
    return RecommendResponse(
        items=items,
        cold_start=shown.listed.result.cold_start,
        explainer=shown.listed.explainer,
        variant=shown.variant,
    )


async def _listed(request: Request, service, query: RecommendQuery, body: RecommendRequest):
    """One service's list: a known user's inline, a text's embedding in a cold-start slot."""
    if body.user_id is not None and not body.explain:  # a lookup: no embedding, no explainer call
        return service.recommend(query)
    if body.user_text is not None:  # a text to embed: one of the few cold-start slots
        async with request.app.state.cold_start.slot():
            return await run_in_threadpool(service.recommend, query)
    return await run_in_threadpool(service.recommend, query)


@router.post(
    "/recommend/batch",
    response_model=BatchRecommendResponse,
    operation_id="recommend_batch",
    summary="Top-N films for each of many known users",
)
async def recommend_batch(request: Request, body: BatchRecommendRequest) -> BatchRecommendResponse:
    engine = request.app.state.service.engine
    check_genres(engine, body.genres)

    def lists():
        return [
            UserList(
                user_id=user_id,
                items=[
                    RecommendedItem(**r.as_dict())
                    for r in engine.recommend(
                        user_id, n=body.n, exclude_seen=body.exclude_seen, genres=body.genres
                    ).items
                ],
            )
            for user_id in body.user_ids
        ]

    return BatchRecommendResponse(results=await run_in_threadpool(lists))
