"""moto's S3 server on loopback, counting every request, for benchmarks over S3.

Started as the tests start it (`tests/support/s3server.py`): moto's WSGI application in a
werkzeug server thread of this process, on a free port of 127.0.0.1. Two WSGI middlewares
sit in front of moto, so each HTTP request the server answers passes them exactly once
(keep-alive or not, whichever client sent it, a subprocess included):

- the tests' `RequestCounter`, whose counts by kind (GET, LIST, HEAD, PUT, DELETE, POST)
  are the figures a benchmark reports;
- `Traffic`, which also keeps each request's Range header and the bytes of its answer, to
  show how a client reads: one GET per pack, or one per blob.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.support.s3server import RequestCounter, S3Endpoint

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None
    bytes_out: int


class Traffic:
    """Every request since the last `reset`, with its Range header and answer size."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Request] = []

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()

    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def logging_app(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path.startswith("/moto-api"):
                return app(environ, start_response)
            answer = app(environ, start_response)
            try:
                body = b"".join(answer)
            finally:
                getattr(answer, "close", lambda: None)()
            request = Request(environ["REQUEST_METHOD"], path, environ.get("HTTP_RANGE"), len(body))
            with self._lock:
                self._requests.append(request)
            return [body]

        return logging_app


def read_pattern(requests: list[Request]) -> dict[str, int]:
    """How a command read objects: GETs, distinct objects got, ranged GETs, and the GETs
    that asked again for an object it had already read from."""
    gets = [r for r in requests if r.method == "GET" and "/" in r.path.strip("/")]
    per_object = Counter(r.path for r in gets)
    return {
        "gets": len(gets),
        "objects": len(per_object),
        "ranged": sum(1 for r in gets if r.range),
        "repeat_gets": sum(n - 1 for n in per_object.values()),
        "bytes_in": sum(r.bytes_out for r in requests),
    }


@dataclass(frozen=True)
class LoopbackS3:
    endpoint: S3Endpoint  # url, credentials, and `requests`: the RequestCounter
    traffic: Traffic

    def reset(self) -> None:
        self.endpoint.requests.reset()
        self.traffic.reset()

    def restic_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.endpoint.key,
            "AWS_SECRET_ACCESS_KEY": self.endpoint.secret,
            "AWS_DEFAULT_REGION": self.endpoint.region,
        }


@contextlib.contextmanager
def loopback_s3() -> Iterator[LoopbackS3]:
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    counter, traffic = RequestCounter(), Traffic()
    app = counter.wrap(traffic.wrap(DomainDispatcherApplication(create_backend_app)))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="moto-s3")
    thread.start()
    try:
        host, port = server.server_address[:2]
        # The socket listens from make_server on: no need to wait for the thread.
        yield LoopbackS3(S3Endpoint(f"http://{host}:{port}", requests=counter), traffic)
    finally:
        server.shutdown()
        thread.join()
