"""The FastAPI app: the engine is loaded once at start-up (lifespan) and kept on ``app.state``."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybridrec import __version__
from hybridrec.api.genres import genre_names
from hybridrec.api.limits import ClientRateLimit, ColdStartGate
from hybridrec.api.routes import catalog, experiment, health, page, recommend
from hybridrec.api.schemas import ErrorResponse
from hybridrec.api.settings import Settings, get_settings
from hybridrec.errors import HybridRecError, InvalidInputError, UnknownIdError

log = logging.getLogger("hybridrec.api")
access_log = logging.getLogger("hybridrec.api.access")
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
ERRORS = {  # what any route may answer besides its own response (documented in the OpenAPI)
    404: {"model": ErrorResponse, "description": "unknown user or film"},
    408: {"model": ErrorResponse, "description": "the request body did not arrive in time"},
    413: {"model": ErrorResponse, "description": "request body too large"},
    422: {"model": ErrorResponse, "description": "invalid request"},
    429: {
        "model": ErrorResponse,
        "description": "too many requests from this client",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
    503: {
        "model": ErrorResponse,
        "description": "the service cannot answer now (the embedder is down, or busy with new users)",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    },
}


def load_state(app: FastAPI, settings: Settings, engine=None) -> None:
    """Load the bundle (verified), its embedder and the explainer; done once, before serving
    (``engine``: one loaded already)."""
    from omegaconf import OmegaConf

    from hybridrec.explain.gemini import build_explainer
    from hybridrec.inference.engine import load_engine
    from hybridrec.service import RecommendationService

    app.state.engine = engine or load_engine(
        settings.bundle,
        settings.search_root,
        settings.text_cache_size,
        settings.max_text_chars,
        text_budget_s=settings.text_budget_s,
    )
    app.state.explainer = build_explainer(OmegaConf.create(settings.explainer), settings.explanation_cache)
    app.state.service = RecommendationService(app.state.engine, app.state.explainer)
    app.state.settings = settings
    app.state.cold_start = ColdStartGate(settings.cold_start_slots, settings.cold_start_wait_s)
    app.state.experiment = None
    if settings.experiment:  # an A/B experiment: variants, assignment, the event log
        from hybridrec.ab.online import build_experiment

        app.state.experiment = build_experiment(
            settings.experiment, app.state.engine, app.state.explainer, settings
        )
    engine = app.state.engine
    log.info(
        "serving bundle %s (%d users, %d items), explainer %s",
        engine.bundle.bundle_id,
        len(engine.user_index),
        engine.n_items,
        app.state.explainer.name,
    )


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class AccessLog:
    """One JSON line per request: its id, method, path, status, latency; never bodies (they may hold
    private text). Every response carries the request's id (``X-Request-ID``: the client's own when
    it sent a well-formed one, else a new one), and so does every line logged while it is served."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-request-id", request_id.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                line = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                }
                access_log.info(json.dumps(line))
            REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Gives every log record the id of the request being served (``-`` outside any)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def install_request_ids() -> None:
    """Every handler of the root logger stamps its records with the request id (``%(request_id)s``)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


class BodyGuard:
    """413 for request bodies over ``max_bytes``, whether announced by Content-Length or streamed;
    408 for a body that does not arrive within ``timeout_s`` (a Content-Length larger than what is
    sent, a client that stalls), instead of a request that hangs."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float):
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    @staticmethod
    def _answer(status: int, detail: str) -> tuple[Message, Message]:
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        return {"type": "http.response.start", "status": status, "headers": headers}, {
            "type": "http.response.body",
            "body": body,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            for message in self._answer(413, f"request body over {self.max_bytes} bytes"):
                await send(message)
            return None
        received = 0
        complete = False
        refusal: tuple[Message, Message] | None = None
        replaced = False

        async def guarded_receive() -> Message:
            nonlocal received, complete, refusal
            if complete:  # the body is in: what comes now is the client leaving
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                refusal = self._answer(408, f"the request body did not arrive within {self.timeout_s:g}s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    refusal = self._answer(413, f"request body over {self.max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if refusal is None:
                return await send(message)
            if not replaced and message["type"] == "http.response.start":  # the app's answer to a cut body
                replaced = True
                for answer in refusal:
                    await send(answer)
            return None

        return await self.app(scope, guarded_receive, guarded_send)


def create_app(settings: Settings | None = None, engine=None) -> FastAPI:
    """The app on ``settings`` (default: from the environment); ``engine``: a bundle loaded already."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        load_state(app, settings, engine)
        yield
        if app.state.experiment is not None:  # what is queued for the event log is written first
            app.state.experiment.close()

    app = FastAPI(
        title="hybridrec",
        version=__version__,
        description=(
            "Hybrid movie recommendations: ratings joined with LLM embeddings of user and movie profiles. "
            "Known users by `user_id`, new users by a free-text `user_text` (cold start)."
        ),
        lifespan=lifespan,
        responses=ERRORS,
    )

    def openapi() -> dict:
        """The spec, with the served catalog's genres as the only ones a request may name."""
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            engine = getattr(app.state, "engine", None)
            if engine is not None:
                names = genre_names(engine)
                schemas = spec["components"]["schemas"]
                for model in ("RecommendRequest", "BatchRecommendRequest"):
                    genres = schemas[model]["properties"]["genres"]
                    array = next(m for m in [genres, *genres.get("anyOf", [])] if m.get("type") == "array")
                    array["items"]["enum"] = names
                for parameter in spec["paths"]["/v1/items"]["get"]["parameters"]:
                    if parameter["name"] == "genre":
                        parameter["schema"] = {"anyOf": [{"type": "string", "enum": names}, {"type": "null"}]}
                for model in ("PredictRequest", "RecommendRequest"):  # the service's limit may be lower
                    text = schemas[model]["properties"]["user_text"]
                    text["maxLength"] = min(text["maxLength"], engine.max_text_chars)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi
    for router in (health.router, recommend.router, catalog.router, experiment.router):
        app.include_router(router, prefix="/v1")
        app.include_router(router, include_in_schema=False)  # the unversioned paths: aliases of /v1
    Instrumentator().instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
    app.include_router(page.router)  # the web page at / (its static files under /static)
    app.mount("/static", page.static_files(), name="static")

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, err: UnknownIdError):
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(InvalidInputError)
    async def invalid_input(request: Request, err: InvalidInputError):
        return JSONResponse({"detail": str(err)}, status_code=422)

    @app.exception_handler(HybridRecError)
    async def service_error(request: Request, err: HybridRecError):
        log.error("request failed: %s", err)
        headers = None if err.retry_after_s is None else {"Retry-After": str(err.retry_after_s)}
        return JSONResponse({"detail": str(err)}, status_code=503, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        """A body that cannot be read (invalid UTF-8, JSON nested too deep) is invalid input: 422,
        as documented, not the framework's 400."""
        status = 422 if err.status_code == 400 else err.status_code
        detail = "the body is not readable JSON" if err.status_code == 400 else err.detail
        return JSONResponse({"detail": detail}, status_code=status, headers=getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError):
        # input values are left out of the echo: they may be long, or private
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in err.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type"],
        )
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    if settings.rate_limit:
        app.add_middleware(ClientRateLimit, rate=settings.rate_limit)
    app.add_middleware(AccessLog)
    return app
