"""What one client, or a crowd of new users, may take from the service: a per-client request rate
(the ``limits`` library's moving window, in memory) and a cap on concurrent cold-start work.

A flood of new texts then costs at most ``slots`` embeddings at a time: known users, whose lists are
lookups, and ``/health`` keep answering at once. Memory: one window per client seen in the last
period (``limits`` expires the rest).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from contextlib import asynccontextmanager

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from hybridrec.errors import BusyError, InvalidInputError

UNLIMITED_PATHS = ("/health", "/v1/health", "/metrics")  # probes and scrapers are never refused


def parse_rate(rate: str) -> RateLimitItem:
    """``"600/minute"``, ``"10/second"``...; a bad string is one clear line."""
    try:
        return parse(rate)
    except ValueError:
        raise InvalidInputError(f"rate_limit must read like 600/minute or 10/second, got {rate!r}") from None


class ClientRateLimit:
    """ASGI middleware: each client address gets ``rate`` requests; over it, 429 with ``Retry-After``
    (whole seconds until the window has room again)."""

    def __init__(self, app: ASGIApp, rate: str):
        self.app = app
        self.rate = parse_rate(rate)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.limiter.hit(self.rate, client):
            return await self.app(scope, receive, send)
        reset_time, _ = self.limiter.get_window_stats(self.rate, client)
        retry_after = max(1, math.ceil(reset_time - time.time()))
        body = json.dumps({"detail": f"too many requests: at most {self.rate} per client"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return None


class ColdStartGate:
    """At most ``slots`` requests embed a new user's text at once; a request that finds no slot
    within ``wait_s`` is refused (503, ``Retry-After``) rather than queued behind the flood.
    Made inside the running event loop (the app's lifespan)."""

    def __init__(self, slots: int, wait_s: float):
        if slots < 1:
            raise ValueError(f"cold_start_slots must be at least 1, got {slots}")
        self.slots, self.wait_s = slots, wait_s
        self.semaphore = asyncio.Semaphore(slots)

    @asynccontextmanager
    async def slot(self):
        try:
            if self.semaphore.locked():
                await asyncio.wait_for(self.semaphore.acquire(), self.wait_s)
            else:
                await self.semaphore.acquire()
        except TimeoutError:
            raise BusyError(
                f"busy: {self.slots} new users' texts are being read; try again shortly",
                retry_after_s=max(1, math.ceil(self.wait_s)),
            ) from None
        try:
            yield
        finally:
            self.semaphore.release()
