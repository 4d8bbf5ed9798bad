"""Blocking work off the event loop: HTML rendering, Folium maps, format conversions and file handling run in
worker threads, so tiles, items and /health on the same worker keep moving while they run.

Exports (Folium maps, csv/gpkg/fgb files) are CPU-heavy pure Python: file conversions share a per-app
`CapacityLimiter` (`DATSO_EXPORT_CONCURRENCY`, default 2) so a burst of exports queues instead of filling
the thread pool. Folium maps go further (`export_process`): a thread still holds the GIL for most of the
0.6-0.9 s a big map takes, and the event loop waits for it every few milliseconds (measured: tile p99 x4 with
exports running), so they run in a small pool of worker *processes* (`DATSO_EXPORT_CONCURRENCY` of them per
server worker, spawned on the first export) at a lower CPU priority (`DATSO_EXPORT_NICE`, default 10): the
operating system then serves tiles first. `DATSO_EXPORT_PROCESSES=false` keeps them in threads.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.requests import Request
from starlette.types import ASGIApp

from api.errors import Problem

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


def _lower_priority(nice: int) -> None:
    if nice > 0:
        os.nice(nice)


def _process_pool(request: Request) -> ProcessPoolExecutor | None:
    state = request.app.state
    settings = getattr(state, "api_settings", None)
    if not getattr(settings, "export_processes", True):
        return None
    pool: ProcessPoolExecutor | None = getattr(state, "export_pool", None)
    if pool is None:
        pool = state.export_pool = ProcessPoolExecutor(
            max_workers=max(1, int(getattr(settings, "export_concurrency", 2))),
            mp_context=multiprocessing.get_context("spawn"),   # never fork a process holding an asyncpg pool
            initializer=_lower_priority, initargs=(int(getattr(settings, "export_nice", 10)),))
    return pool


async def export_process(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A CPU-heavy export in a worker process (`fn` and its arguments must pickle: pass ids and bytes, not
    registry objects or big dicts); in a thread when `DATSO_EXPORT_PROCESSES=false`."""
    call = functools.partial(fn, *args, **kwargs)
    pool = _process_pool(request)
    if pool is None:
        return await export(request, call)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, call)
    except BrokenProcessPool:
        request.app.state.export_pool = None       # a worker died (killed, out of memory): a new pool next time
        pool.shutdown(wait=False, cancel_futures=True)
        raise Problem(503, "Tiến trình xuất bản đồ bị dừng; vui lòng thử lại",
                      "The map export worker stopped; please retry") from None


def shutdown(app: ASGIApp) -> None:
    """Stop the export processes (the app's lifespan calls this on shutdown)."""
    state = getattr(app, "state", None)
    pool: ProcessPoolExecutor | None = getattr(state, "export_pool", None)
    if pool is not None:
        state.export_pool = None  # type: ignore[union-attr]
        pool.shutdown(wait=False, cancel_futures=True)
