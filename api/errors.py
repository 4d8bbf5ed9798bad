"""THE error path: RFC 9457 problem+json errors in Vietnamese or English (or, for browsers on the web map
and Folium exports, the HTML error page). Never leaks database error text.

An error is raised once, where it is detected, carrying its HTTP status: a `BilingualError` (bad input
anywhere below the API, or a route's `Problem`). Everything else a request may end with early (database
faults, values the database refuses) is listed once in `ERRORS`; `install` puts one handler on every class
of it, and `render` is the one function that writes an error response. Nothing catches an error to raise
another one."""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db import CLIENT_ERRORS, DB_DOWN, DatabaseUnavailable, QueryTimeout, database_fault
from gis.errors import BilingualError
from layers.ingest.writes import DatabaseDown
from layers.maps.folium_export import OfflineAssetsMissing

log = logging.getLogger("datso.api")
slog = structlog.get_logger("datso.api")

PROBLEM = "application/problem+json"
TITLES = {
    400: ("Yêu cầu không hợp lệ", "Bad request"), 401: ("Chưa xác thực", "Unauthorized"),
    403: ("Không có quyền", "Forbidden"), 404: ("Không tìm thấy", "Not found"),
    405: ("Phương thức không được phép", "Method not allowed"),
    406: ("Định dạng không được hỗ trợ", "Not acceptable"), 409: ("Xung đột dữ liệu", "Conflict"),
    412: ("Điều kiện không thỏa", "Precondition failed"), 413: ("Dữ liệu quá lớn", "Payload too large"),
    415: ("Kiểu nội dung không được hỗ trợ", "Unsupported media type"),
    422: ("Dữ liệu không hợp lệ", "Unprocessable content"),
    428: ("Thiếu điều kiện If-Match", "Precondition required"),
    429: ("Quá nhiều yêu cầu", "Too many requests"),
    500: ("Lỗi máy chủ", "Internal server error"), 503: ("Dịch vụ tạm thời không sẵn sàng", "Service unavailable"),
}


class Problem(BilingualError):
    """Raise anywhere in a request: becomes a problem+json response (`extra` members are added to it)."""

    def __init__(self, status: int, detail_vi: str, detail_en: str | None = None, **extra: Any) -> None:
        super().__init__(detail_vi, detail_en or detail_vi, status)
        self.extra = extra

    def members(self) -> dict[str, Any]:
        return self.extra


def request_lang(request: Request) -> str:
    lang = request.query_params.get("lang")
    if lang in ("vi", "en"):
        return lang
    accept = request.headers.get("accept-language", "")
    if accept.lower().startswith("en"):
        return "en"
    return "vi"


def problem_response(request: Request, status: int, detail: str, **extra: Any) -> Response:
    lang = request_lang(request)
    vi, en = TITLES.get(status, ("Lỗi", "Error"))
    body = {"type": "about:blank", "title": vi if lang == "vi" else en, "status": status, "detail": detail,
            "instance": str(request.url.path), **extra}
    headers = {"Content-Language": lang}
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


# -- the one table: exception class -> answer ---------------------------------------------------------------
# Bad input is a `BilingualError` carrying its own HTTP status (class attribute, or given where it is raised)
# and its problem members (`members()`); every other exception that may end a request early is listed here
# ONCE. An answer is the error to render, or None: not ours after all (the last resort answers 500).

Answer = Callable[[Request, Exception], BilingualError | None]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def database_problem(exc: BaseException, writing: bool = False) -> Problem:
    """The 503 problem for a database that cannot answer now; a statement timeout says so (a narrower
    filter may help), a write says nothing was written, anything else that the database is unavailable."""
    if isinstance(exc, QueryTimeout) or isinstance(exc, asyncpg.exceptions.QueryCanceledError) \
            or isinstance(exc, psycopg.errors.QueryCanceled):
        limit = f" ({exc.seconds:g} s)" if isinstance(exc, QueryTimeout) else ""
        return Problem(503, f"Truy vấn chạy quá thời gian cho phép{limit}; hãy thu hẹp bộ lọc hoặc phạm vi, "
                            "hoặc thử lại sau",
                       f"The query ran past its time limit{limit}; narrow the filter or area, or retry later")
    if writing:
        return Problem(503, "Cơ sở dữ liệu tạm thời không truy cập được; chưa ghi gì, hãy thử lại",
                       "The database is unavailable; nothing was written, retry")
    return Problem(503, "Cơ sở dữ liệu tạm thời không truy cập được; vui lòng thử lại sau",
                   "The database is unavailable for the moment; please retry later")


def _as_is(request: Request, exc: Exception) -> BilingualError:
    assert isinstance(exc, BilingualError)
    return exc


def _database(request: Request, exc: Exception) -> BilingualError:
    # the database cannot answer now (down, restarting, out of connections) or a statement ran past its
    # request class's statement_timeout: 503 + Retry-After, never a 500 and never database text
    return database_problem(exc, writing=request.method not in SAFE_METHODS)


def _client_error(request: Request, exc: Exception) -> BilingualError | None:
    # asyncpg's "connection is closed" / "another operation is in progress" after the server went away
    # mid-request is a database fault; the same errors without such a cause are bugs (500, last resort)
    fault = database_fault(exc)
    return None if fault is None else _database(request, fault)  # type: ignore[arg-type]


def _assets_missing(request: Request, exc: Exception) -> BilingualError:
    # a deployment without the vendored Leaflet cannot build offline Folium exports
    return Problem(503, "Thiếu thư viện Leaflet để xuất bản đồ ngoại tuyến", "Leaflet is missing for offline exports")


def _refused_value(request: Request, exc: Exception) -> BilingualError:
    # a value PostgreSQL/PostGIS refuses (a division by zero in a filter, a GeoJSON literal it cannot read):
    # the client's input, on every face
    return Problem(400, "Cơ sở dữ liệu không chấp nhận một giá trị trong yêu cầu (kiểm tra bộ lọc/hình học)",
                   "The database refused a value in the request (check the filter/geometry)")


ERRORS: dict[type[Exception], Answer] = {
    BilingualError: _as_is,                                   # layers/, tiles/, gis/ and the routes' Problem
    DatabaseUnavailable: _database,                           # api/db.py (QueryTimeout included)
    asyncpg.exceptions.QueryCanceledError: _database,
    psycopg.OperationalError: _database,
    DatabaseDown: _database,                                  # the write path (layers/ingest/writes.py)
    **{cls: _database for cls in DB_DOWN},
    **{cls: _client_error for cls in CLIENT_ERRORS},
    asyncpg.exceptions.DataError: _refused_value,
    psycopg.DataError: _refused_value,                        # the same, on a psycopg face (downloads)
    asyncpg.exceptions.InternalServerError: _refused_value,
    OfflineAssetsMissing: _assets_missing,                    # layers/maps/folium_export.py
}


def answer(request: Request, exc: Exception) -> BilingualError | None:
    """The error `exc` is answered with, from the most specific class of `ERRORS` it belongs to."""
    for cls in type(exc).__mro__:
        how = ERRORS.get(cls)
        if how is not None:
            return how(request, exc)
    return None


# -- rendering: problem+json, or the HTML error page for browsers on the routes that ask for it -------------

_PAGES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


def html_error_page(request: Request) -> None:
    """Route dependency: browsers (Accept: text/html, no `f=json`) get this route's errors as the HTML
    error page (the web map and Folium exports); everyone else problem+json, as on every route."""
    request.state.html_errors = True


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and request.query_params.get("f") != "json"


def render(request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None,
           **extra: Any) -> Response:
    """THE error response: problem+json (with `extra` members), or the HTML error page."""
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", retry_after(request))
    if getattr(request.state, "html_errors", False) and wants_html(request):
        lang = request_lang(request)
        return _PAGES.TemplateResponse(request, "map_error.html", {
            "lang": lang, "status": status, "detail": detail,
            "title": ("Không thể hiển thị bản đồ" if lang == "vi" else "The map cannot be shown"),
            "back": ("Về bản đồ" if lang == "vi" else "Back to the map"),
        }, status_code=status, headers=headers or None)
    resp = problem_response(request, status, detail, **extra)
    resp.headers.update(headers)
    return resp


def install(app: FastAPI) -> None:
    """One handler for every class of `ERRORS`, and the framework's own (HTTP errors, parameter validation)."""

    async def _answer(request: Request, exc: Exception) -> Response:
        error = answer(request, exc)
        if error is None:
            raise exc
        return render(request, error.status, error.message(request_lang(request)), **error.members())

    for cls in ERRORS:
        app.add_exception_handler(cls, _answer)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return render(request, exc.status_code, detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        lang = request_lang(request)
        detail = "Tham số không hợp lệ" if lang == "vi" else "Invalid parameters"
        detail += ": " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return render(request, 400, detail, errors=errors)

    # the last resort: inside Starlette's ServerErrorMiddleware (which would answer and then re-raise, making
    # uvicorn close the keep-alive connection), outside every other middleware
    build = app.build_middleware_stack

    def build_with_last_resort() -> ASGIApp:
        stack = build()
        if isinstance(stack, ServerErrorMiddleware):
            stack.app = LastResort(stack.app)
            return stack
        return LastResort(stack)  # pragma: no cover - Starlette always puts ServerErrorMiddleware outermost

    app.build_middleware_stack = build_with_last_resort  # type: ignore[method-assign]


def retry_after(request: Request) -> str:
    settings = getattr(request.app.state, "api_settings", None)
    return str(getattr(settings, "retry_after", 5))


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class LastResort:
    """Pure ASGI: an exception no handler turned into a response is logged (structured, with a request
    id) and answered with a 500 problem+json, and NOT re-raised, so uvicorn keeps the keep-alive connection.
    If the response had already started, nothing can be sent: the request ends and uvicorn closes the
    connection (it must, the response is incomplete)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def _send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, _send)
        except Exception as exc:  # noqa: BLE001 - the last resort
            request = Request(scope)
            rid = request.headers.get("x-request-id", "")
            if not _REQUEST_ID.match(rid):
                rid = uuid.uuid4().hex
            slog.error("unhandled_error", request_id=rid, method=scope.get("method"), path=scope.get("path"),
                       error=type(exc).__name__, response_started=started,
                       traceback="".join(traceback.format_exception(exc)))
            if started:
                return
            lang = request_lang(request)
            resp = problem_response(request, 500, "Lỗi không mong đợi" if lang == "vi" else "Unexpected error",
                                    request_id=rid)
            resp.headers["X-Request-ID"] = rid
            resp.headers["Cache-Control"] = "no-store"
            await resp(scope, receive, send)
