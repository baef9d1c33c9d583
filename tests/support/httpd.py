"""A scripted HTTP receiver on loopback: real sockets, real HTTP/1.1, answers chosen by the test.

``Receiver`` serves on ``127.0.0.1`` on a free port (or a given one) in a thread. The test queues
:class:`Reply` values; each request takes the next one (or the receiver's default: a plain 200, a
fixed :class:`Reply`, or a function of the request) and is recorded as a :class:`Received` with its
arrival time, so a test asserts what the receiver saw and when. A reply can also answer late (``delay``),
close the socket without answering (``drop``) or reset it (``reset``), and can serve over TLS.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["Received", "Receiver", "Reply", "closed_port"]


@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``echo``: the body is the request's headers as JSON and its Authorization
    comes back as ``X-Echoed-Authorization`` (a careless receiver that echoes credentials)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    drop: bool = False
    reset: bool = False
    echo: bool = False


@dataclass(frozen=True)
class Received:
    """A request as the receiver saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer_port: int
    at: float = 0.0  # time.time() when the request was read

    @property
    def key(self) -> str | None:
        """Its ``Idempotency-Key``."""
        return self.headers.get("idempotency-key")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) leaves the late reply writing to a closed socket: expected here.
        self.receiver.errors.append(repr(sys.exc_info()[1]))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _serve(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        got = Received(self.command, self.path, headers, body, self.client_address[1], time.time())
        receiver.received.append(got)
        reply = receiver.next_reply(got)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop or reply.reset:
            self.close_connection = True
            if reply.reset:  # SO_LINGER 0 and close now (before the server's shutdown sends a FIN): an RST
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            return
        out = json.dumps(headers).encode() if reply.echo else reply.body
        self.send_response(reply.status)
        extra = (
            {"X-Echoed-Authorization": headers["authorization"]} if reply.echo and "authorization" in headers else {}
        )
        for name, value in {**reply.headers, **extra}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_PUT = do_PATCH = do_GET = _serve


class Receiver:
    """Context manager: a scripted HTTP(S) server on 127.0.0.1; ``url`` is its base address."""

    def __init__(
        self,
        tls: ssl.SSLContext | None = None,
        *,
        port: int = 0,
        default: Reply | Callable[[Received], Reply] | None = None,
    ) -> None:
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.default = default or Reply()
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.receiver = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def script(self, *replies: Reply) -> None:
        """Queue answers, taken in order by the next requests."""
        with self._lock:
            self._replies.extend(replies)

    def next_reply(self, request: Received) -> Reply:
        """The next scripted answer, else the default for ``request``."""
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        return self.default(request) if callable(self.default) else self.default

    def keys(self, path_prefix: str = "") -> list[str]:
        """The ``Idempotency-Key`` of every request (under ``path_prefix``), repeats included, in arrival order."""
        return [r.key for r in list(self.received) if r.key is not None and r.path.startswith(path_prefix)]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released: connecting to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
