"""GET /experiment (what runs) and POST /feedback (what users did, into the durable event log)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from hybridrec.ab.assignment import unit_key
from hybridrec.api.schemas import ErrorResponse, ExperimentResponse, FeedbackRequest, FeedbackResponse

router = APIRouter(tags=["experiments"])


@router.get(
    "/experiment",
    response_model=ExperimentResponse,
    operation_id="experiment",
    summary="The A/B experiment running, its variants and their traffic shares",
)
async def get_experiment(request: Request) -> ExperimentResponse:
    experiment = getattr(request.app.state, "experiment", None)
    return ExperimentResponse(**experiment.describe()) if experiment else ExperimentResponse()


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    status_code=202,
    operation_id="feedback",
    summary="A click, watch, rating or dismissal of a recommended film; answered once it is committed",
    responses={
        404: {"model": ErrorResponse, "description": "unknown film"},
        409: {"model": ErrorResponse, "description": "no experiment runs"},
        422: {"model": ErrorResponse, "description": "malformed, an unknown variant, a rating off the scale"},
    },
)
async def post_feedback(request: Request, body: FeedbackRequest) -> FeedbackResponse:
    experiment = getattr(request.app.state, "experiment", None)
    if experiment is None:
        raise HTTPException(409, "no experiment runs on this service: there is nothing to give feedback to")
    unit = unit_key(body.user_id, body.session_id)
    event = experiment.feedback_event(unit, body.item_id, body.event, body.value, body.variant)
    (event_id,) = await experiment.log.record([event])
    return FeedbackResponse(event_id=event_id)
