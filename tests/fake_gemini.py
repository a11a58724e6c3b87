"""A local stand-in for the Gemini HTTP API, for testing the real google-genai client offline.

Paths and JSON shapes follow ../shared/FINDINGS-embedders.md. Failures are scripted per request:
``server.fail(429, times=1)`` answers the next request with a 429, ``server.delay(5)`` makes the next
one slow; everything else succeeds. Every request is recorded for assertions.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import time
from dataclasses import dataclass, field

import numpy as np

_PATH = re.compile(r"^/(v1|v1beta)/models/(?P<model>[^:/]+):(?P<method>[A-Za-z]+)")
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def fake_vector(text: str, dim: int) -> list[float]:
    """A deterministic vector per text, so tests can check which text got which vector."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=dim).round(6).tolist()


@dataclass
class Recorded:
    path: str
    method: str
    model: str
    headers: dict
    body: dict


@dataclass
class FakeGemini:
    reply_text: str = "Because you loved similar films."
    requests: list[Recorded] = field(default_factory=list)
    _script: list[tuple[str, object]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._script.extend([("status", status)] * times)

    def delay(self, seconds: float, times: int = 1) -> None:
        with self._lock:
            self._script.extend([("delay", seconds)] * times)

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    def _next_action(self):
        with self._lock:
            return self._script.pop(0) if self._script else ("ok", None)

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method]

    def start(self) -> str:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                match = _PATH.match(self.path)
                if not match:
                    return self._send(
                        404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}}
                    )
                fake.requests.append(
                    Recorded(self.path, match["method"], match["model"], dict(self.headers), body)
                )
                if not self.headers.get("x-goog-api-key"):
                    return self._send(
                        403, {"error": {"code": 403, "message": "no key", "status": "PERMISSION_DENIED"}}
                    )
                kind, value = fake._next_action()
                if kind == "status":
                    return self._send(
                        value,
                        {
                            "error": {
                                "code": value,
                                "message": "scripted failure",
                                "status": STATUS_NAMES.get(value, "UNKNOWN"),
                            }
                        },
                    )
                if kind == "delay":
                    time.sleep(value)
                if match["method"] == "batchEmbedContents":
                    return self._send(200, {"embeddings": [self._embed(r) for r in body.get("requests", [])]})
                if match["method"] == "generateContent":
                    text = fake.reply_text(body) if callable(fake.reply_text) else fake.reply_text
                    return self._send(
                        200,
                        {
                            "candidates": [
                                {
                                    "content": {"role": "model", "parts": [{"text": text}]},
                                    "finishReason": "STOP",
                                    "index": 0,
                                }
                            ],
                            "usageMetadata": {
                                "promptTokenCount": 10,
                                "candidatesTokenCount": 10,
                                "totalTokenCount": 20,
                            },
                        },
                    )
                return self._send(
                    404, {"error": {"code": 404, "message": "unsupported", "status": "NOT_FOUND"}}
                )

            @staticmethod
            def _embed(request: dict) -> dict:
                text = "".join(p.get("text", "") for p in request["content"]["parts"])
                return {"values": fake_vector(text, int(request.get("outputDimensionality") or 3072))}

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
