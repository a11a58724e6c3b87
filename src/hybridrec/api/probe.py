"""Waiting for a started service to answer (the load benchmark and the tests start real servers)."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_until_up(base_url: str, server: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Return once ``GET /health`` answers 200; raise with the server's last words if it died or never did."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.25)
    stderr = server.stderr.read() if server.stderr and server.poll() is not None else ""
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    raise RuntimeError(f"the server at {base_url} did not come up: {stderr[-2000:]}")
