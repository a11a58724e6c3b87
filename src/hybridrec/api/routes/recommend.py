"""POST /predict and POST /recommend: known users inline, text users (an embedding) off the event loop."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from hybridrec.api.schemas import (
    ErrorResponse,
    ExplanationOut,
    PredictRequest,
    PredictResponse,
    RecommendedItem,
    RecommendRequest,
    RecommendResponse,
)

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


@router.post("/predict", response_model=PredictResponse, summary="Predicted rating of one film for one user")
async def predict(request: Request, body: PredictRequest) -> PredictResponse:
    engine = request.app.state.engine
    if body.user_id is not None:
        rating = engine.predict(body.user_id, body.item_id)
    else:
        log.debug("predict for user_text=%r", _short(body.user_text))
        rating = await run_in_threadpool(engine.predict_text, body.user_text, body.item_id)
    info = engine.item_info(body.item_id)
    return PredictResponse(
        rating=round(rating, 4),
        item_id=info["item_id"],
        title=info["title"],
        user_id=body.user_id,
        cold_start=body.user_id is None,
    )


@router.post("/recommend", response_model=RecommendResponse, summary="Top-N films for a known or a new user")
async def recommend(request: Request, body: RecommendRequest) -> RecommendResponse:
    engine = request.app.state.engine
    if body.user_id is not None:
        result = engine.recommend(body.user_id, n=body.n, exclude_seen=body.exclude_seen, genres=body.genres)
    else:
        log.debug("recommend for user_text=%r", _short(body.user_text))
        result = await run_in_threadpool(engine.recommend_text, body.user_text, body.n, body.genres)
    items = [RecommendedItem(**r.as_dict()) for r in result.items]
    explainer_name = None
    if body.explain and items:
        explanations = await run_in_threadpool(_explain, request.app.state, result)
        for item, explanation in zip(items, explanations, strict=True):
            item.explanation = ExplanationOut(**explanation.as_dict())
        explainer_name = request.app.state.explainer.name
    return RecommendResponse(items=items, cold_start=result.cold_start, explainer=explainer_name)


def _explain(state, result):
    from hybridrec.explain.evidence import collect_evidence

    evidences = [
        collect_evidence(
            state.engine,
            r.item_id,
            user_id=result.user_id,
            user_text=result.user_text,
            predicted_rating=r.score,
        )
        for r in result.items
    ]
    return state.explainer.explain_many(evidences)
