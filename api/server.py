"""Run the app with uvicorn, with limits a public server needs (docs/reliability.md).

- **Request-head timeout** (`DATSO_HEADER_TIMEOUT`, 10 s): uvicorn's `timeout_keep_alive` only runs between
  requests, so a connection that never completes its first request head was held forever (2,000 such
  half-open connections were). `HeadTimeoutHttpTools` / `HeadTimeoutH11` arm a timer when a connection opens
  and when a new request starts; if the head (request line + headers) is not complete in time the connection
  is closed (with a `408` when part of a request arrived).
- **Request-head size** (`DATSO_MAX_HEAD_BYTES`, 64 KiB): httptools has no limit of its own; past it the
  request is refused with 400 and the connection closed (with h11, `h11_max_incomplete_event_size` bounds a
  head still incomplete past the limit).
- keep-alive timeout, no `server: uvicorn` banner, a per-worker `limit_concurrency` (beyond it uvicorn
  answers 503; here a problem+json with `Retry-After`), the listen backlog and a graceful-shutdown bound.
- With several workers uvicorn pre-binds one socket whose accepted connections lose TCP_NODELAY (uvicorn
  issue #3149: every keep-alive request after the first waits ~40 ms for a delayed ACK); datso sets
  TCP_NODELAY on the listening socket, which accepted sockets inherit.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import h11
import uvicorn
import uvicorn.config
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from layers.settings import ServerSettings, get_server_settings

_PROBLEM_503 = (b'{"type":"about:blank","title":"Service unavailable","status":503,'
                b'"detail":"The server is at its connection limit; please retry"}')


async def _over_limit(scope: Any, receive: Any, send: Any) -> None:
    """What uvicorn answers past `limit_concurrency`: problem+json and Retry-After instead of plain text."""
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/problem+json"), (b"content-length", str(len(_PROBLEM_503)).encode()),
        (b"retry-after", b"1"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": _PROBLEM_503})


class _HeadTimeout:
    """Mixin: close a connection whose request head is not complete `header_timeout` s after the connection
    opened or the request began."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    header_timeout: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes: int = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
                                 b"content-length: 16\r\nconnection: close\r\n\r\nRequest Timeout\n")
        self.transport.close()


class HeadTimeoutHttpTools(_HeadTimeout, HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout = getattr(config, "datso_header_timeout", 10.0)
        self.max_head_bytes = getattr(config, "datso_max_head_bytes", 65536)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        self._arm_head_timer()
        super().on_message_begin()

    def _count(self, n: int) -> None:
        self._head_bytes += n
        if self._head_bytes > self.max_head_bytes:
            # raised inside a parser callback: httptools reports it as HttpParserError, and uvicorn
            # answers 400 and closes the connection
            raise ValueError("request head too large")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()


class HeadTimeoutH11(_HeadTimeout, H11Protocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout = getattr(config, "datso_header_timeout", 10.0)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._head_bytes += len(data)
            self._arm_head_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:   # the request head arrived (or the connection failed)
            self._disarm_head_timer()
            self._head_bytes = 0


_orig_bind = uvicorn.config.Config.bind_socket


def _bind_nodelay(self: uvicorn.config.Config) -> socket.socket:
    sock = _orig_bind(self)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


# past `limit_concurrency` uvicorn runs its module-level `service_unavailable` app: ours says problem+json.
# Set on import, so worker processes (which import this module to unpickle their protocol class) get it too.
httptools_impl.service_unavailable = _over_limit  # type: ignore[assignment]
h11_impl.service_unavailable = _over_limit  # type: ignore[assignment]


def config(app: Any = "api.main:app", host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
           reload: bool = False, http: str = "httptools", settings: ServerSettings | None = None,
           **kwargs: Any) -> uvicorn.Config:
    s = settings or get_server_settings()
    protocol = HeadTimeoutHttpTools if http == "httptools" else HeadTimeoutH11
    cfg = uvicorn.Config(app, host=host, port=port, workers=workers, reload=reload, access_log=False,
                         log_level="info", proxy_headers=True, http=protocol, server_header=False,
                         timeout_keep_alive=s.keep_alive_timeout, limit_concurrency=s.limit_concurrency,
                         backlog=s.backlog, h11_max_incomplete_event_size=s.max_head_bytes,
                         timeout_graceful_shutdown=s.graceful_shutdown_timeout,
                         timeout_worker_healthcheck=s.worker_healthcheck_timeout, **kwargs)
    cfg.datso_header_timeout = s.header_timeout  # type: ignore[attr-defined]
    cfg.datso_max_head_bytes = s.max_head_bytes  # type: ignore[attr-defined]
    return cfg


def run(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, reload: bool = False) -> None:
    uvicorn.config.Config.bind_socket = _bind_nodelay  # type: ignore[method-assign]
    cfg = config(host=host, port=port, workers=workers, reload=reload)
    server = uvicorn.Server(cfg)
    if cfg.should_reload:
        from uvicorn.supervisors import ChangeReload

        sock = cfg.bind_socket()
        ChangeReload(cfg, target=server.run, sockets=[sock]).run()
    elif cfg.workers > 1:
        from uvicorn.supervisors import Multiprocess

        sock = cfg.bind_socket()
        Multiprocess(cfg, sockets=[sock]).run()
    else:
        server.run()
