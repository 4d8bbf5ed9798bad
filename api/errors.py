"""RFC 9457 problem+json errors, in Vietnamese or English. Never leaks database error text."""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from typing import Any

import asyncpg
import orjson
import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db import CLIENT_ERRORS, DB_DOWN, DatabaseUnavailable, QueryTimeout, database_fault
from gis.errors import BilingualError

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
        self.detail_vi, self.detail_en, self.extra = self.vi, self.en, extra


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


def install(app: FastAPI) -> None:
    @app.exception_handler(BilingualError)
    async def _bilingual(request: Request, exc: BilingualError) -> Response:
        # any bad-input error of layers/ or tiles/ (CQL2, filters, tiles, exports...) or a route's Problem
        return _problem(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        resp = problem_response(request, exc.status_code, detail)
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        lang = request_lang(request)
        detail = "Tham số không hợp lệ" if lang == "vi" else "Invalid parameters"
        detail += ": " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem_response(request, 400, detail, errors=errors)

    async def _database(request: Request, exc: Exception) -> Response:
        # the database cannot answer now (down, restarting, out of connections) or a statement ran past its
        # request class's statement_timeout: 503 + Retry-After, never a 500 and never database text
        problem = database_problem(exc)
        return _problem(request, problem)

    for cls in (DatabaseUnavailable, asyncpg.exceptions.QueryCanceledError, psycopg.OperationalError, *DB_DOWN):
        app.add_exception_handler(cls, _database)

    async def _client_error(request: Request, exc: Exception) -> Response:
        # asyncpg's "connection is closed" / "another operation is in progress" after the server went away
        # mid-request is a database fault; the same errors without such a cause are bugs (500, last resort)
        fault = database_fault(exc)
        if fault is None:
            raise exc
        return _problem(request, database_problem(fault))

    for cls in CLIENT_ERRORS:
        app.add_exception_handler(cls, _client_error)

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


def database_problem(exc: BaseException) -> Problem:
    """The 503 problem for a database that cannot answer now; a statement timeout says so (a narrower
    filter may help), anything else says the database is unavailable."""
    if isinstance(exc, QueryTimeout) or isinstance(exc, asyncpg.exceptions.QueryCanceledError) \
            or isinstance(exc, psycopg.errors.QueryCanceled):
        limit = f" ({exc.seconds:g} s)" if isinstance(exc, QueryTimeout) else ""
        return Problem(503, f"Truy vấn chạy quá thời gian cho phép{limit}; hãy thu hẹp bộ lọc hoặc phạm vi, "
                            "hoặc thử lại sau",
                       f"The query ran past its time limit{limit}; narrow the filter or area, or retry later")
    return Problem(503, "Cơ sở dữ liệu tạm thời không truy cập được; vui lòng thử lại sau",
                   "The database is unavailable for the moment; please retry later")


def _problem(request: Request, exc: BilingualError) -> Response:
    extra = exc.extra if isinstance(exc, Problem) else {}
    resp = problem_response(request, exc.status, exc.message(request_lang(request)), **extra)
    if exc.status == 503:
        resp.headers["Retry-After"] = retry_after(request)
    return resp


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
