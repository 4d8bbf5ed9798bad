"""Accounts over HTTP: sign-in sessions for the officer page and user administration.

- `POST /auth/login` (JSON or form: name, password) → a session token (JSON, never a cookie: no CSRF), used as
  `Authorization: Bearer …` exactly like an API key until it expires (`DATSO_SESSION_LIFETIME_MINUTES`);
  wrong password, unknown user and disabled user all answer the same 401; attempts are rate limited per user
  name and client IP (`DATSO_RATE_LIMIT_LOGIN`). `POST /auth/logout` ends the session, `GET /auth/me` says who.
- `/admin/users…` (admins only: 401 anonymous, 403 officers): list, create (the first API key is in the
  answer, once), read, change (JSON merge patch: disabled, scope, role, display name, password), new keys. An
  admin with a province scope sees and manages only users inside that scope and cannot grant more than it.
  Producers and packers (traceability accounts, scoped by growing-area / packing-house codes, as `datso users
  create NAME --role producer --area CODE`) are listed, created and disabled here too; for a province-scoped
  admin their place is the province of the communes of those areas / houses.

The work is done by `layers.accounts.users` (argon2, SHA-256 hashes) on the primary, in a thread.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api import openapi as oas
from api.auth import api_key_scheme, bearer_scheme, bearer_secret, require_account, require_admin
from api.errors import Problem
from api.features import read_body
from api.security import client_ip, too_many
from layers.accounts import users
from layers.accounts.principal import ALL_ROLES, TRACE_ROLES, Principal
from layers.accounts.users import SESSION_PREFIX, AccountError, User

router = APIRouter()
SECURITY = [Depends(bearer_scheme), Depends(api_key_scheme)]
_NO_STORE = {"Cache-Control": "no-store"}

_STR = {"type": "string"}
_CODES = {"type": "array", "items": _STR}
_SCOPE = {"type": "object", "properties": {"national": {"type": "boolean"},
                                            "provinces": {"type": "array", "items": _STR},
                                            "communes": {"type": "array", "items": _STR},
                                            "areas": _CODES, "facilities": _CODES}}
_ROLE = {"type": "string", "enum": list(ALL_ROLES)}
_USER = {"type": "object", "required": ["name", "role", "scope", "status"], "properties": {
    "name": _STR, "display_name": {"type": ["string", "null"]}, "role": _ROLE,
    "scope": _SCOPE, "status": {"type": "string", "enum": ["active", "disabled"]},
    "has_password": {"type": "boolean"}, "active_keys": {"type": "integer"},
    "created_at": {"type": ["string", "null"]}, "disabled_at": {"type": ["string", "null"]}}}
_ME = {"type": "object", "required": ["name", "role", "scope"], "properties": {
    "name": _STR, "display_name": {"type": ["string", "null"]}, "role": _STR, "scope": _SCOPE,
    "via": {"type": "string", "enum": ["key", "session"]}}}
_SESSION = {"type": "object", "required": ["token", "token_type", "expires_at", "user"], "properties": {
    "token": _STR, "token_type": {"type": "string", "enum": ["Bearer"]}, "expires_at": _STR, "user": _ME}}
_KEY = {"type": "object", "required": ["key_name", "key"], "properties": {"key_name": _STR, "key": _STR}}
_LOGIN_BODY = {"type": "object", "required": ["name", "password"],
               "properties": {"name": _STR, "password": {"type": "string", "format": "password"}}}
_USER_BODY = {"type": "object", "required": ["name", "role"], "properties": {
    "name": _STR, "role": _ROLE, "display_name": _STR,
    "provinces": {"type": "array", "items": _STR}, "communes": {"type": "array", "items": _STR},
    "areas": _CODES, "facilities": _CODES,            # a producer's growing-area codes, a packer's packing houses
    "national": {"type": "boolean"}, "password": {"type": "string", "format": "password"}}}
_PATCH_BODY = {"type": "object", "properties": {
    "disabled": {"type": "boolean"}, "role": {"type": "string", "enum": ["officer", "admin"]},  # staff only
    "display_name": _STR, "provinces": {"type": "array", "items": _STR},
    "communes": {"type": "array", "items": _STR}, "national": {"type": "boolean"},
    "areas": _CODES, "facilities": _CODES,            # a producer's / packer's codes, replaced as a whole
    "password": {"type": "string", "format": "password"}}}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json",
                    headers={**_NO_STORE, **(headers or {})})


def _body(schema: dict[str, Any], media: tuple[str, ...] = ("application/json",)) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {m: {"schema": schema} for m in media}}}


def _target(request: Request) -> Any:
    return request.app.state.write_pool          # the primary, a psycopg pool opened on first use


def _object(body: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Problem(400, "Nội dung phải là một đối tượng JSON", "The body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Problem(400, f"Thành phần không hợp lệ: {', '.join(unknown)}", f"Unknown members: {', '.join(unknown)}",
                      errors=[{"field": u, "message": "unknown member"} for u in unknown])
    return body


def _typed(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what_vi: str, what_en: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise Problem(422, f"'{name}' phải là {what_vi}", f"'{name}' must be {what_en}",
                      errors=[{"field": name, "message": f"must be {what_en}"}])
    return value


def _codes(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Problem(422, f"'{name}' phải là danh sách mã (chuỗi)", f"'{name}' must be a list of codes (strings)",
                      errors=[{"field": name, "message": "must be a list of codes"}])
    return value


def _visible(who: Principal, user: User, places: dict[str, str | None] | None = None) -> bool:
    """A province-scoped admin manages users inside their own provinces only: staff by their scope, producers and
    packers by the provinces of their areas / houses (`places`: code -> province; an unknown place: national
    admins only)."""
    if who.national:
        return True
    if user.role in TRACE_ROLES:
        codes = [*user.areas, *user.facilities]
        return bool(codes) and places is not None and all(places.get(c) in who.provinces for c in codes)
    return not user.national and set(user.provinces) <= who.provinces


async def _places(request: Request, who: Principal, found: list[User]) -> dict[str, str | None] | None:
    trace = [u for u in found if u.role in TRACE_ROLES]
    if who.national or not trace:
        return None
    return dict(await _run(users.code_provinces, _target(request), [a for u in trace for a in u.areas],
                           [f for u in trace for f in u.facilities]))


def _within(who: Principal, national: bool | None, provinces: list[str] | None) -> None:
    if who.national:
        return
    if national or (provinces is not None and not set(provinces) <= who.provinces):
        raise Problem(403, f"Không thể cấp phạm vi vượt quá phạm vi của bạn ({who.scope_text('vi')})",
                      f"You cannot grant a scope beyond your own ({who.scope_text('en')})")


async def _codes_within(request: Request, who: Principal, role: str, areas: list[str], facilities: list[str]) -> None:
    """A province-scoped admin gives a producer / packer only areas / houses inside the admin's provinces."""
    if who.national:
        return
    places = await _run(users.code_provinces, _target(request), areas, facilities)
    outside = sorted(c for c in [*areas, *facilities] if c in places and places[c] not in who.provinces)
    if outside:
        raise Problem(403, f"{', '.join(outside)} nằm ngoài phạm vi của bạn ({who.scope_text('vi')})",
                      f"{', '.join(outside)} lie outside your scope ({who.scope_text('en')})",
                      field="areas" if role == "producer" else "facilities")


async def _run(fn: Any, *args: Any, **kw: Any) -> Any:
    return await run_in_threadpool(fn, *args, **kw)      # argon2 and psycopg block: off the event loop


async def _user_for(request: Request, who: Principal, name: str) -> User:
    user: User = await _run(users.get_user, _target(request), name)
    if not _visible(who, user, await _places(request, who, [user])):   # as if it did not exist: a scoped admin learns nothing about other provinces
        raise AccountError(f"Không có người dùng '{name}'", f"No user named '{name}'", 404, "name")
    return user


# -- sign-in ---------------------------------------------------------------------------------------------------

async def _credentials(request: Request) -> tuple[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=10)
        data: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    else:
        data = _object(await read_body(request, request.app.state.api_settings), {"name", "password"})
    missing = [f for f in ("name", "password") if not isinstance(data.get(f), str) or not data.get(f)]
    if missing:
        raise Problem(422, f"Thiếu {', '.join(missing)}", f"Missing {', '.join(missing)}",
                      errors=[{"field": f, "message": "required"} for f in missing])
    return str(data["name"]).strip()[:200], str(data["password"])[:1024]


@router.post("/auth/login", summary="Sign in: a session token for Authorization: Bearer",
             openapi_extra=_body(_LOGIN_BODY, ("application/json", "application/x-www-form-urlencoded")),
             responses={**oas.ok_json(_SESSION, "Signed in"), **oas.problems(400, 401, 415, 422, 429, 503)})
async def login(request: Request) -> Response:
    name, password = await _credentials(request)
    limits = getattr(request.app.state, "rate_limits", None)
    if limits is not None and (wait := limits.retry_after("login", f"{client_ip(request.scope)}|{name}",
                                                          hit=True)) is not None:
        raise too_many(request, wait)
    lifetime = request.app.state.api_settings.session_lifetime_minutes
    got = await _run(users.login, _target(request), name, password, lifetime)
    if got is None:
        raise Problem(401, "Tên đăng nhập hoặc mật khẩu không đúng", "Wrong user name or password")
    token, expires = got
    user: User = await _run(users.get_user, _target(request), name)
    return _json({"token": token, "token_type": "Bearer", "expires_at": expires.isoformat(),
                  "user": {**user.principal.as_dict(), "via": "session"}})


@router.post("/auth/logout", summary="Sign out: the session token stops working", dependencies=SECURITY,
             status_code=204, responses={204: {"description": "Signed out"}, **oas.problems(400, 401, 429, 503)})
async def logout(request: Request, who: Principal = Depends(require_account)) -> Response:
    secret = bearer_secret(request) or ""
    if who.via != "session" or not secret.startswith(SESSION_PREFIX):
        raise Problem(400, "Đây là khóa API, không phải phiên đăng nhập; thu hồi khóa bằng datso keys revoke",
                      "This is an API key, not a session; revoke keys with datso keys revoke")
    await _run(users.logout, _target(request), secret)
    return Response(status_code=204, headers=_NO_STORE)


@router.get("/auth/me", summary="Who am I: name, role, scope", dependencies=SECURITY,
            responses={**oas.ok_json(_ME), **oas.problems(401, 429, 503)})
async def me(request: Request, who: Principal = Depends(require_account)) -> Response:
    """Any signed-in account, producers and packers included (their scope: area / facility codes)."""
    return _json({**who.as_dict(), "via": who.via})


# -- administration --------------------------------------------------------------------------------------------

@router.get("/admin/users", summary="Users (admins)", dependencies=SECURITY,
            responses={**oas.ok_json({"type": "object", "properties": {"users": {"type": "array", "items": _USER}}}),
                       **oas.problems(401, 403, 429, 503)})
async def list_users(request: Request, who: Principal = Depends(require_admin)) -> Response:
    found: list[User] = await _run(users.list_users, _target(request))
    places = await _places(request, who, found)
    return _json({"users": [u.as_dict() for u in found if _visible(who, u, places)]})


@router.post("/admin/users", summary="Create a user (admins); the answer holds their first API key, once",
             dependencies=SECURITY, status_code=201, openapi_extra=_body(_USER_BODY),
             responses={201: {"description": "Created", "headers": {"Location": {"schema": _STR}},
                              "content": {"application/json": {"schema": {"type": "object", "properties": {
                                  "user": _USER, "key_name": _STR, "key": _STR}}}}},
                        **oas.problems(400, 401, 403, 409, 413, 415, 422, 429, 503)})
async def create_user(request: Request, who: Principal = Depends(require_admin)) -> Response:
    body = _object(await read_body(request, request.app.state.api_settings), set(_USER_BODY["properties"]))
    name = _typed(body, "name", str, "một chuỗi", "a string")
    role = _typed(body, "role", str, "một chuỗi", "a string")
    for f in ("name", "role"):
        if body.get(f) is None:
            raise Problem(422, f"Thiếu {f}", f"Missing {f}", errors=[{"field": f, "message": "required"}])
    provinces, communes = _codes(body, "provinces") or [], _codes(body, "communes") or []
    areas, facilities = _codes(body, "areas") or [], _codes(body, "facilities") or []
    national = bool(_typed(body, "national", bool, "true/false", "true or false"))
    _within(who, national, provinces)
    if role in TRACE_ROLES:
        await _codes_within(request, who, role, areas, facilities)
    created: users.Created = await _run(
        users.create_user, _target(request), name, role, provinces, communes, national,
        _typed(body, "display_name", str, "một chuỗi", "a string"), _typed(body, "password", str, "một chuỗi",
                                                                             "a string"),
        areas=areas, facilities=facilities)
    return _json({"user": created.user.as_dict(), "key_name": created.key_name, "key": created.key}, 201,
                 {"Location": f"/admin/users/{created.user.name}"})


@router.get("/admin/users/{name}", summary="A user (admins)", dependencies=SECURITY,
            responses={**oas.ok_json(_USER), **oas.problems(401, 403, 404, 429, 503)})
async def get_user(request: Request, name: str, who: Principal = Depends(require_admin)) -> Response:
    return _json((await _user_for(request, who, name)).as_dict())


@router.patch("/admin/users/{name}", summary="Change a user (admins): disable, scope (provinces, or a producer's / packer's codes), role, password",
              dependencies=SECURITY, openapi_extra=_body(_PATCH_BODY, ("application/merge-patch+json",
                                                                        "application/json")),
              responses={**oas.ok_json(_USER), **oas.problems(400, 401, 403, 404, 413, 415, 422, 429, 503)})
async def patch_user(request: Request, name: str, who: Principal = Depends(require_admin)) -> Response:
    body = _object(await read_body(request, request.app.state.api_settings), set(_PATCH_BODY["properties"]))
    target = await _user_for(request, who, name)
    if body.get("role") is not None and (target.role in TRACE_ROLES or body.get("role") in TRACE_ROLES):
        raise Problem(422, "Không đổi vai trò giữa cán bộ/quản trị và nhà sản xuất/cơ sở đóng gói (phạm vi khác "
                           "nhau): tạo người dùng mới và vô hiệu hóa người cũ",
                      "A role cannot change between officer/admin and producer/packer (their scopes differ): create "
                      "a new user and disable the old one", field="role", value=body.get("role"))
    if target.role in TRACE_ROLES and any(body.get(f) is not None for f in ("provinces", "communes", "national")):
        raise Problem(422, f"Người dùng vai trò {target.role} có phạm vi theo mã vùng/cơ sở, không theo tỉnh/xã",
                      f"A {target.role} is scoped by area/house codes, not provinces or communes",
                      field="provinces")
    areas, facilities = _codes(body, "areas"), _codes(body, "facilities")
    if target.role not in TRACE_ROLES and (areas is not None or facilities is not None):
        raise Problem(422, f"Người dùng vai trò {target.role} có phạm vi theo tỉnh/xã, không theo mã vùng/cơ sở",
                      f"A {target.role} is scoped by provinces and communes, not area/house codes",
                      field="areas" if areas is not None else "facilities")
    if target.role in TRACE_ROLES and (areas is not None or facilities is not None):
        await _codes_within(request, who, target.role, areas or [], facilities or [])
    if name == who.name and body.get("disabled") is True:
        raise Problem(409, "Không thể tự vô hiệu hóa tài khoản của mình", "You cannot disable your own account")
    provinces, communes = _codes(body, "provinces"), _codes(body, "communes")
    national = _typed(body, "national", bool, "true/false", "true or false")
    _within(who, national, provinces)
    user: User = await _run(
        users.update_user, _target(request), name,
        disabled=_typed(body, "disabled", bool, "true/false", "true or false"),
        role=_typed(body, "role", str, "một chuỗi", "a string"),
        display_name=_typed(body, "display_name", str, "một chuỗi", "a string"),
        national=national, provinces=provinces, communes=communes,
        password=_typed(body, "password", str, "một chuỗi", "a string"), areas=areas, facilities=facilities)
    return _json(user.as_dict())


@router.post("/admin/users/{name}/keys", summary="A new API key for a user (admins), shown once",
             dependencies=SECURITY, status_code=201,
             responses={201: {"description": "Created", "content": {"application/json": {"schema": _KEY}}},
                        **oas.problems(401, 403, 404, 409, 429, 503)})
async def new_key(request: Request, name: str, who: Principal = Depends(require_admin)) -> Response:
    await _user_for(request, who, name)
    key_name, secret = await _run(users.new_key, _target(request), name)
    return _json({"key_name": key_name, "key": secret}, 201)
