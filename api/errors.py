"""RFC 9457 problem+json errors, in Vietnamese or English. Never leaks database error text."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gis.errors import BilingualError

log = logging.getLogger("datso.api")

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
    async def _problem(request: Request, exc: BilingualError) -> Response:
        # any bad-input error of layers/ or tiles/ (CQL2, filters, tiles, exports...) or a route's Problem
        extra = exc.extra if isinstance(exc, Problem) else {}
        return problem_response(request, exc.status, exc.message(request_lang(request)), **extra)

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        lang = request_lang(request)
        return problem_response(request, 500, "Lỗi không mong đợi" if lang == "vi" else "Unexpected error")
