"""Authentication for writes: `Authorization: Bearer <key>` or `X-API-Key: <key>`, looked up by SHA-256 hash.

`require_roles(roles)` is a FastAPI dependency returning the `ApiKey`; anonymous requests get a 401 (with
`WWW-Authenticate: Bearer`), a key whose role may not write this layer gets a 403. Wrong keys are counted per
client IP (`DATSO_RATE_LIMIT_AUTH_FAILURES`): over the limit, a 429 with `Retry-After` before any lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.exceptions import HTTPException

from api.errors import Problem, request_lang
from api.security import RateLimits, client_ip, too_many
from layers.accounts.auth import LOOKUP_SQL, ApiKey, hash_secret

# declared for the OpenAPI document (security schemes); the dependency reads the headers itself
bearer_scheme = HTTPBearer(auto_error=False, description="API key as a bearer token (datso keys create)")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


def _secret(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def current_key(request: Request) -> ApiKey | None:
    secret = _secret(request)
    if secret is None:
        return None
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    ip = client_ip(request.scope)
    if limits is not None and (wait := limits.retry_after("auth", ip, hit=False)) is not None:
        raise too_many(request, wait)       # a guesser over the limit costs no query
    async with request.app.state.db.connection() as conn:   # database down: DatabaseUnavailable, a 503
        row = await conn.fetchrow(LOOKUP_SQL, hash_secret(secret))
    if row is None and limits is not None:
        limits.failed_auth(ip)
    return ApiKey(row["name"], row["role"]) if row else None


def require_roles(roles: tuple[str, ...]) -> Callable[[Request], Awaitable[ApiKey]]:
    async def dependency(request: Request) -> ApiKey:
        vi_en = request_lang(request) == "vi"
        if _secret(request) is None:
            raise HTTPException(401, "Cần khóa API (Authorization: Bearer <khóa> hoặc X-API-Key)" if vi_en
                                else "An API key is required (Authorization: Bearer <key> or X-API-Key)",
                                headers={"WWW-Authenticate": "Bearer"})
        key = await current_key(request)
        if key is None:
            raise HTTPException(401, "Khóa API không hợp lệ hoặc đã bị thu hồi" if vi_en
                                else "Invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        if key.role not in roles:
            raise Problem(403, f"Vai trò '{key.role}' không được sửa lớp này (cần: {', '.join(roles)})",
                          f"Role '{key.role}' may not edit this collection (needs: {', '.join(roles)})")
        return key

    return dependency
