"""A local stub HTTP server for tests and benchmarks: outbound HTTP never leaves the machine.

    with StubServer() as stub:
        settings.METRICS_ALLOWED_HOSTS = [stub.host_port]  # it listens on 127.0.0.1
        stub.route("/value", (200, {}, {"value": 42}))
        stub.route("/echo", lambda path, headers: (200, {}, {"path": path}))
        stub.route("/old", redirect("/value"))
        stub.route("/slow", (200, {}, trickle(b"x" * 100, delay=0.1)))
        ... stub.url + "/value" ...
        stub.requests[-1].headers["authorization"]

A response is (status, headers, body). The body may be bytes, str (sent as UTF-8), an
iterator of bytes (streamed as it is produced: chunked, unless the headers give a
Content-Length) or anything else JSON can encode (sent as application/json). A handler
is a callable (path_with_query, headers) -> response, with lower-case header names.

`StubServer(ssl_context=...)` serves HTTPS with the context's certificate.

Every connection gets its own daemon thread and the listen queue is long, so a
benchmark can hold 1,000 requests open at once: with `latency=0.05` they are answered
in parallel, about 50 ms after they arrive.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

StubResponse = tuple[int, Mapping[str, str], Any]
Handler = Callable[[str, dict[str, str]], StubResponse]


@dataclass(frozen=True)
class StubRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


def redirect(location: str, status: int = 302) -> StubResponse:
    return (status, {"Location": location}, b"")


def trickle(body: bytes, *, delay: float = 0.1, chunk: int = 1) -> Iterator[bytes]:
    """`body` a few bytes at a time, `delay` seconds apart: a server too slow to wait for."""
    for start in range(0, len(body), chunk):
        if start:
            time.sleep(delay)
        yield body[start : start + chunk]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    stub: StubServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The client going away mid-answer (a size cap, a deadline) is what tests
        # provoke on purpose; a traceback on stderr would only be noise.
        pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like real servers
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        stub = self.server.stub
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        stub._record(StubRequest(self.command, self.path, headers, body))
        if stub.latency:
            time.sleep(stub.latency)
        response = stub._routes.get(urlsplit(self.path).path)
        if response is None:
            status, response_headers, body = (404, {}, b"no route")
        elif callable(response):
            status, response_headers, body = response(self.path, headers)
        else:
            status, response_headers, body = response
        self._send(status, dict(response_headers), body)

    def _send(self, status: int, headers: dict[str, str], body: Any) -> None:
        chunks: Iterable[bytes] | None = None
        if isinstance(body, str):
            body = body.encode()
        elif isinstance(body, Iterator):
            chunks = body
        elif not isinstance(body, bytes | bytearray):
            # allow_nan: tests need to serve the NaN that real sources send
            body = json.dumps(body, allow_nan=True).encode()
            headers.setdefault("Content-Type", "application/json")
        names = {name.lower() for name in headers}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if chunks is None:
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif "content-length" in names:
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")


class StubServer:
    """A threaded HTTP server on 127.0.0.1 with a free port, run in the background."""

    def __init__(self, *, latency: float = 0.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.latency = latency
        self.scheme = "https" if ssl_context else "http"
        self._routes: dict[str, StubResponse | Handler] = {}
        self._lock = threading.Lock()
        self.requests: list[StubRequest] = []
        self._server = _Server(("127.0.0.1", 0), _RequestHandler)
        self._server.stub = self
        if ssl_context:
            # The handshake then happens in each connection's thread, not the accept loop.
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        # A short poll interval: stop() waits up to one interval, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def host_port(self) -> str:
        """What to put in METRICS_ALLOWED_HOSTS: 127.0.0.1 is refused otherwise."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_port}"

    def route(self, path: str, response: StubResponse | Handler) -> None:
        """Answer requests for `path` (query string ignored) with `response`."""
        self._routes[path] = response

    def requests_to(self, path: str) -> list[StubRequest]:
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def _record(self, request: StubRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
