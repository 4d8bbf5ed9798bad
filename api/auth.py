"""Authentication: `Authorization: Bearer <secret>` or `X-API-Key: <secret>`, where the secret is an API key
(`datso users create`, `datso keys create`) or a session token (`POST /auth/login`), looked up by its SHA-256
hash together with its user (disabled users and expired sessions match nothing).

The dependencies return a `layers.accounts.principal.Principal` (name, role, provinces, communes, national,
actor): `require_roles(roles)` for writes (401 anonymous with `WWW-Authenticate: Bearer`, 403 for a role that
may not write), `require_account` (any signed-in account, producers and packers too), `require_admin`
(admins only). `current_principal` gives
None for anonymous requests (public reads stay anonymous). Wrong secrets are counted per client IP
(`DATSO_RATE_LIMIT_AUTH_FAILURES`): over the limit, a 429 with `Retry-After` before any lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.exceptions import HTTPException

from api.errors import Problem, request_lang
from api.security import RateLimits, client_ip, too_many
from layers.accounts.principal import ALL_ROLES, Principal
from layers.accounts.users import LOOKUP_SQL, hash_secret, principal_from_row

# declared for the OpenAPI document (security schemes); the dependency reads the headers itself
bearer_scheme = HTTPBearer(auto_error=False, description="API key (datso users create) or session token "
                                                         "(POST /auth/login) as a bearer token")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


def bearer_secret(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def current_principal(request: Request) -> Principal | None:
    """The signed-in user of this request, or None (anonymous, or a wrong/revoked/expired secret)."""
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    secret = bearer_secret(request)
    if secret is None:
        request.state.principal = None
        return None
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    ip = client_ip(request.scope)
    if limits is not None and (wait := limits.retry_after("auth", ip, hit=False)) is not None:
        raise too_many(request, wait)       # a guesser over the limit costs no query
    pool = await request.app.state.db.pool("writer")   # the primary: no replica lag on a new or revoked key
    async with pool.acquire() as conn:
        row = await conn.fetchrow(LOOKUP_SQL, hash_secret(secret))
    if row is None and limits is not None:
        limits.failed_auth(ip)
    principal = principal_from_row(row) if row else None
    request.state.principal = principal
    return principal


# the old name (a key is one way of being a principal)
current_key = current_principal


def _unauthorized(request: Request, present: bool) -> HTTPException:
    vi = request_lang(request) == "vi"
    if not present:
        text = ("Cần đăng nhập hoặc khóa API (Authorization: Bearer <khóa> hoặc X-API-Key)" if vi
                else "Sign-in or an API key is required (Authorization: Bearer <key> or X-API-Key)")
    else:
        text = ("Khóa API hoặc phiên đăng nhập không hợp lệ, đã hết hạn hoặc đã bị thu hồi" if vi
                else "Invalid, expired or revoked API key or session")
    return HTTPException(401, text, headers={"WWW-Authenticate": "Bearer"})


def require_roles(roles: tuple[str, ...]) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the signed-in principal whose role is one of `roles` (401 anonymous, 403 other roles)."""
    async def dependency(request: Request) -> Principal:
        present = bearer_secret(request) is not None
        principal = await current_principal(request) if present else None
        if principal is None:
            raise _unauthorized(request, present)
        if principal.role not in roles:
            raise Problem(403, f"Vai trò '{principal.role}' không được làm việc này (cần: {', '.join(roles)})",
                          f"Role '{principal.role}' may not do this (needs: {', '.join(roles)})")
        return principal

    return dependency


require_account = require_roles(ALL_ROLES)
require_admin = require_roles(("admin",))
