"""Talking to Gemini through the real ``google-genai`` client: key, client, retries, request rate.

Shared by the Gemini embedder and the Gemini explainer. The key comes from the environment or a
git-ignored ``.env`` file and is never logged or put in a name, a repr or an error message.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from hybridrec.errors import HybridRecError

log = logging.getLogger(__name__)

KEY_VARIABLES = ("GOOGLE_API_KEY", "GEMINI_API_KEY")  # google-genai's own order: GOOGLE_API_KEY wins
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class GeminiKeyError(HybridRecError):
    """No API key: the message says how to provide one."""

    exit_code = 2


class GeminiUnavailableError(HybridRecError):
    """Gemini kept failing after the retries (or answered with an error that retrying cannot fix)."""

    retry_after_s = 30


def _dotenv_values() -> dict[str, str]:
    from dotenv import dotenv_values

    values: dict[str, str] = {}
    for folder in (Path.cwd(), Path(os.environ.get("PROJECT_ROOT", "."))):
        env_file = folder / ".env"
        if env_file.is_file():
            values = {**{k: v for k, v in dotenv_values(env_file).items() if v}, **values}
    return values


def find_api_key() -> str | None:
    """The key from the environment, else from ``.env``; an empty value counts as unset."""
    for source in (os.environ, _dotenv_values()):
        for variable in KEY_VARIABLES:
            if source.get(variable):
                return source[variable]
    return None


def require_api_key(purpose: str) -> str:
    key = find_api_key()
    if not key:
        raise GeminiKeyError(
            f"{purpose} needs a Gemini API key: set GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment "
            "or in a git-ignored .env file in the project folder"
        )
    return key


def make_client(api_key: str, base_url: str | None = None, timeout_s: float | None = None):
    """A ``google.genai.Client``; ``base_url`` points it elsewhere (a proxy, or the tests' fake server)."""
    from google import genai
    from google.genai import types

    base_url = base_url or os.environ.get("GOOGLE_GEMINI_BASE_URL") or None
    options = types.HttpOptions(
        base_url=base_url, timeout=None if timeout_s is None else max(1, int(timeout_s * 1000))
    )
    return genai.Client(api_key=api_key, http_options=options)


def is_transient(error: BaseException) -> bool:
    """Worth retrying: 408/429/5xx answers, timeouts and dropped connections; not other 4xx."""
    from google.genai import errors as genai_errors

    if isinstance(error, genai_errors.APIError):
        return int(getattr(error, "code", 0) or 0) in RETRYABLE_STATUS
    transport_errors = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
            transport_errors.append(module.TransportError)
        except (ImportError, AttributeError):
            continue
    return isinstance(error, (*transport_errors, TimeoutError, ConnectionError))


def describe(error: BaseException) -> str:
    """One line about a Gemini failure, without echoing request content."""
    code = getattr(error, "code", None)
    status = getattr(error, "status", None)
    message = getattr(error, "message", None)
    if code is not None:
        return f"HTTP {code} {status or ''}{': ' + message if message else ''}".strip()
    return f"{type(error).__name__}: {error}"[:300]


def retrying(
    max_attempts: int, initial_wait_s: float, max_wait_s: float, within_s: float | None = None
) -> Retrying:
    """Exponential backoff with jitter on transient errors, for at most ``max_attempts`` (and
    ``within_s`` seconds, when given); re-raises the last error when spent."""
    stop = stop_after_attempt(max_attempts)
    if within_s is not None:
        stop = stop | stop_before_delay(max(within_s, 0.0))
    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop,
        wait=wait_exponential_jitter(initial=initial_wait_s, max=max_wait_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )


class RateLimiter:
    """At most ``per_minute`` calls a minute, spaced evenly; thread-safe. ``per_minute <= 0`` is unlimited."""

    def __init__(self, per_minute: float):
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)
