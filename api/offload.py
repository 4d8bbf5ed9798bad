"""Blocking work off the event loop: HTML rendering, Folium maps, format conversions and file handling run in
worker threads, so tiles, items and /health on the same worker keep moving while they run.

Exports (Folium maps, csv/gpkg/fgb files) are CPU-heavy pure Python: they also share a per-app
`CapacityLimiter` (`DATSO_EXPORT_CONCURRENCY`, default 2) so a burst of exports queues instead of filling
the thread pool and starving the event loop of the GIL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request

T = TypeVar("T")


def _export_limiter(request: Request) -> CapacityLimiter:
    state = request.app.state
    limiter: CapacityLimiter | None = getattr(state, "export_limiter", None)
    if limiter is None:
        settings = getattr(state, "api_settings", None)
        limiter = state.export_limiter = CapacityLimiter(max(1, int(getattr(settings, "export_concurrency", 2))))
    return limiter


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Short blocking work (a template, a JSON decode): the default thread pool."""
    return await anyio.to_thread.run_sync(fn, *args)


async def export(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """An export (Folium map, file conversion): a worker thread, at most `export_concurrency` at once."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=_export_limiter(request))
