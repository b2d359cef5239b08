"""A tiny HTTP server on 127.0.0.1 for the download tests, with switchable misbehaviour."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest


@dataclass
class ServerState:
    """What the server serves and how it misbehaves; ``requests`` logs (path, Range header)."""

    files: dict[str, bytes] = field(default_factory=dict)
    truncate_first: int = 0  # number of initial GETs cut off after half the bytes
    support_range: bool = True
    corrupt: bool = False  # flip one byte of every response body
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    base: str = ""

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        name = self.path.lstrip("/")
        range_header = self.headers.get("Range")
        state.requests.append((name, range_header))
        if name not in state.files:
            self.send_error(404)
            return
        body = state.files[name]
        if state.corrupt:
            body = body[:-1] + bytes([body[-1] ^ 0xFF])
        start = 0
        if range_header and state.support_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if state.truncate_first > 0:
            state.truncate_first -= 1
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


@pytest.fixture
def http_server() -> Iterator[ServerState]:
    """Serve ``state.files`` at ``state.base`` (http://127.0.0.1:PORT) in a background thread."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    state = ServerState(base=f"http://127.0.0.1:{server.server_address[1]}")
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
