from __future__ import annotations

from fastapi import APIRouter, Request

from hybridrec.api.schemas import HealthResponse, TextCache

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    operation_id="health",
    summary="Liveness, and which bundle is served",
)
async def get_health(request: Request) -> HealthResponse:
    engine = request.app.state.engine
    manifest = engine.bundle.manifest
    metrics = {
        k: float(v)
        for k, v in (manifest.get("metrics") or {}).items()
        if isinstance(v, (int, float)) and v == v
    }
    return HealthResponse(
        status="ok",
        bundle_id=manifest["bundle_id"],
        model=manifest.get("model"),
        embedder=manifest.get("embedder"),
        n_users=len(engine.user_index),
        n_items=engine.n_items,
        cv_metrics=metrics,
        text_cache=None
        if engine.embedder is None
        else TextCache(entries=len(engine.embedder), size=engine.embedder.size),
    )
