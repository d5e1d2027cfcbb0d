"""A lean HTTP source for the pull benchmark: asyncio, keep-alive, a fixed JSON answer.

The test stub (tests/stub_http.py) starts a thread per connection, which is fine for
tests but would spend the benchmark's two cores on the stand-in for a remote source.
This one answers every GET after `latency` seconds from a single event loop thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any


class LeanSource:
    def __init__(self, body: Any, *, latency: float) -> None:
        self.body = json.dumps(body).encode()
        self.latency = latency
        self.requests = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LeanSource:
        self._thread.start()
        self._started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=2048)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(self.body)).encode() + b"\r\n"
        )
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                close = b"connection: close" in request.lower()
                await asyncio.sleep(self.latency)
                writer.write(
                    head + (b"Connection: close\r\n\r\n" if close else b"\r\n") + self.body
                )
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
