"""Run the app with uvicorn. With several workers uvicorn pre-binds one socket whose accepted connections
lose TCP_NODELAY (uvicorn issue #3149: every keep-alive request after the first waits ~40 ms for a delayed
ACK); datso sets TCP_NODELAY on the listening socket, which accepted sockets inherit."""

from __future__ import annotations

import socket

import uvicorn
import uvicorn.config

_orig_bind = uvicorn.config.Config.bind_socket


def _bind_nodelay(self: uvicorn.config.Config) -> socket.socket:
    sock = _orig_bind(self)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, reload: bool = False) -> None:
    uvicorn.config.Config.bind_socket = _bind_nodelay  # type: ignore[method-assign]
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, reload=reload, access_log=False,
                log_level="info", proxy_headers=True)
