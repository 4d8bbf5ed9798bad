"""Browser and HTTP defaults: trusted hosts and the public base URL, security headers (CSP, nosniff, frames,
referrer), CORS from an allow-list, and rate limits (slowapi) on failed authentication and public lookups.

- `public_base_url(request)` is THE way to build absolute links: `DATSO_PUBLIC_URL` when set, otherwise the
  request's own scheme://host, which `SecurityHeaders` has already checked against the trusted hosts (an
  untrusted `Host` is answered 400 problem+json before any route runs), so a response under
  `Cache-Control: public` never carries links built from a spoofed `Host`.
- `SecurityHeaders` (pure ASGI, outermost: cached tiles answered by `TileFastPath` get the headers too) adds
  `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy` and a
  `Content-Security-Policy`: HTML pages get `PAGE_CSP` (no inline script; MapLibre needs `worker-src blob:`
  and `img-src data: blob:`), Folium exports (full of inline script and CDN links) a `sandbox` policy so
  their scripts run in an opaque origin, everything else (JSON, tiles, static files) `default-src 'none'`.
  A route that sets its own CSP (the Swagger UI page) keeps it.
- CORS is off unless `DATSO_CORS_ORIGINS` lists origins: reads (GET/HEAD) from those origins; writes
  (POST/PUT/PATCH/DELETE with `Authorization`/`X-API-Key`) only with `DATSO_CORS_ALLOW_WRITES=true` and only
  for named origins (never with `*`); never credentials (datso uses no cookies).
- `RateLimits` keeps slowapi's limiter (the `limits` library; in memory unless
  `DATSO_RATE_LIMIT_STORAGE_URI` points at redis:// or memcached://): failed authentications per client IP
  (checked before the key lookup, so a guesser costs no query once over the limit) and public lookups
  (`/search`, Folium exports `/maps/...`), each a 429 problem+json with `Retry-After`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import re
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from slowapi import Limiter
from slowapi.util import get_remote_address
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import render, request_lang
from layers.settings import ApiSettings

log = logging.getLogger("datso.api")

DEFAULT_TRUSTED_HOSTS = ("localhost", "127.0.0.1", "::1")
UNCHECKED_PATHS = frozenset({"/health"})   # no links in it; probes (load balancers, k8s) use any Host
SWAGGER_VENDOR = "/static/vendor/swagger-ui"   # swagger-ui-dist, vendored (api/static/vendor/README.md)


# -- trusted hosts and the public base URL -------------------------------------------------------------------

def trusted_hosts(a: ApiSettings) -> list[str]:
    """`DATSO_TRUSTED_HOSTS` when set; otherwise the loopback names `make run` answers on (a reverse proxy's
    default upstream Host too) plus the host of `DATSO_PUBLIC_URL` when set."""
    if a.trusted_hosts is not None:
        return a.trusted_hosts
    public = urlsplit(a.public_url).hostname if a.public_url else None
    return [*DEFAULT_TRUSTED_HOSTS, *([public] if public else [])]


def _host_name(host: str) -> str:
    """The name of a Host header value without its port ('[::1]:8000' -> '::1', 'a.vn:80' -> 'a.vn')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostPolicy:
    """Exact names, `*.example.vn` suffixes, or `*` (anything)."""

    def __init__(self, hosts: Iterable[str]) -> None:
        names = [h.strip().lower() for h in hosts if h.strip()]
        self.any = "*" in names
        self.exact = frozenset(_host_name(h) for h in names if not h.startswith("*"))
        self.suffixes = tuple(h[1:] for h in names if h.startswith("*."))

    def allows(self, host: str | None) -> bool:
        if self.any or host is None:   # no Host header (HTTP/1.0): links fall back to the bound address
            return True
        name = _host_name(host)
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))


def public_base_url(request: Request) -> str:
    """Base URL for absolute links: `DATSO_PUBLIC_URL`, or the request's scheme://host[/root_path] when its
    Host is trusted (always the case behind `SecurityHeaders`; checked again here so no caller can build a
    link from a spoofed Host)."""
    a: ApiSettings = request.app.state.api_settings
    if a.public_url:
        return a.public_url.rstrip("/")
    policy: HostPolicy | None = getattr(request.app.state, "host_policy", None)
    if policy is not None and not policy.allows(request.headers.get("host")):
        raise _untrusted_host(request)
    return str(request.base_url).rstrip("/")


def _untrusted_host(request: Request) -> StarletteHTTPException:
    host = (request.headers.get("host") or "")[:100]
    vi = request_lang(request) == "vi"
    return StarletteHTTPException(400, (
        f"Tên máy chủ (Host) '{host}' không được tin cậy; quản trị viên đặt DATSO_PUBLIC_URL hoặc DATSO_TRUSTED_HOSTS"
        if vi else
        f"Host '{host}' is not trusted; the administrator sets DATSO_PUBLIC_URL or DATSO_TRUSTED_HOSTS"))


# -- Content-Security-Policy -------------------------------------------------------------------------------

def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url.replace("{", "").replace("}", ""))   # an XYZ template: {s}.tile... -> s.tile...
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if url.split("//", 1)[-1].startswith("{s}."):                # subdomain placeholders: any subdomain
        host = "*." + host.split(".", 1)[1]
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def page_csp(public_url: str | None, basemap_url: str | None) -> str:
    """The policy of the pages we serve (map, features HTML, error pages): scripts and styles only from files
    we serve, no inline script, no eval; MapLibre builds its worker from a blob and decodes tiles/sprites
    through blob:/data: images; the optional basemap is fetched (MapLibre) or loaded as images (Leaflet)."""
    own = " ".join(o for o in ("'self'", _origin(public_url)) if o)
    remote = " ".join(o for o in (_origin(public_url), _origin(basemap_url)) if o)
    remote = f" {remote}" if remote else ""
    return (f"default-src 'self'; script-src {own}; style-src {own}; img-src 'self' data: blob:{remote}; "
            f"connect-src 'self'{remote}; font-src {own}; worker-src 'self' blob:; child-src 'self' blob:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


# Folium exports inline all their script (and link CDNs unless offline): the page runs sandboxed, in an opaque
# origin, so whatever its scripts do, they cannot act as this site (no storage, no same-origin requests).
FOLIUM_CSP = ("sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox allow-downloads; "
              "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
# JSON, tiles, images, static files: nothing may run if a browser ever renders one as a document
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _is_folium(path: str) -> bool:
    return path.startswith("/maps/") and path.endswith(".html")


class SecurityHeaders:
    """Pure-ASGI middleware (outermost): refuses an untrusted `Host` (400 problem+json) and adds the security
    headers to every response. Per response it only scans the header list once (content type, own CSP)."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy, page_policy: str, referrer_policy: str) -> None:
        self.app = app
        self.hosts = hosts
        common = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                  (b"referrer-policy", referrer_policy.encode("latin-1"))]
        csp = b"content-security-policy"
        self.page = [*common, (csp, page_policy.encode("latin-1"))]
        self.folium = [*common, (csp, FOLIUM_CSP.encode("latin-1"))]
        self.api = [*common, (csp, API_CSP.encode("latin-1"))]
        self.common = common
        self.seen: set[bytes | None] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.hosts.any:
            raw = None
            for k, v in scope["headers"]:
                if k == b"host":
                    raw = v
                    break
            if raw not in self.seen and not self._check(raw) and scope["path"] not in UNCHECKED_PATHS:
                request = Request(scope)
                exc = _untrusted_host(request)
                response = render(request, 400, str(exc.detail))
                await response(scope, receive, _Sender(send, self, scope["path"]))
                return
        await self.app(scope, receive, _Sender(send, self, scope["path"]))

    def _check(self, raw: bytes | None) -> bool:
        ok = self.hosts.allows(None if raw is None else raw.decode("latin-1"))
        if ok and len(self.seen) < 64:     # the few Host values seen in practice: a set lookup next time
            self.seen.add(raw)
        return ok

    def extra_headers(self, headers: list[tuple[bytes, bytes]], path: str) -> list[tuple[bytes, bytes]]:
        html = own_csp = False
        for k, v in headers:
            if k == b"content-type":
                html = v.startswith(b"text/html")
            elif k == b"content-security-policy":
                own_csp = True
        if own_csp:
            return self.common
        if html:
            return self.folium if _is_folium(path) else self.page
        return self.api


class _Sender:
    """`send` adding the security headers to the response start (a slotted object: cheaper than a closure)."""

    __slots__ = ("send", "mw", "path")

    def __init__(self, send: Send, mw: SecurityHeaders, path: str) -> None:
        self.send, self.mw, self.path = send, mw, path

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            headers += self.mw.extra_headers(headers, self.path)
            message["headers"] = headers
        await self.send(message)


# -- the Swagger UI page with its own policy -------------------------------------------------------------

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def install_docs(app: FastAPI, path: str) -> None:
    """Swagger UI at `path`, served from our own files (no CDN: it works offline), with a policy of its own:
    its one inline script is allowed by its SHA-256 hash, nothing else; Swagger UI styles elements inline."""

    @app.get(path, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - Swagger UI",
                                   swagger_js_url=f"{root}{SWAGGER_VENDOR}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{SWAGGER_VENDOR}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/static/favicon.svg",
                                   # no validator badge: it would load an image from validator.swagger.io
                                   # tag groups start collapsed: with ~180 operations Swagger UI stops drawing
                                   # after the first groups when every operation is expanded at once
                                   swagger_ui_parameters={"validatorUrl": None, "docExpansion": "none",
                                                          **(app.swagger_ui_parameters or {})})
        body = bytes(page.body)
        hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
                          for s in _INLINE_SCRIPT.findall(body.decode()))
        csp = (f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")
        return HTMLResponse(body, headers={"Content-Security-Policy": csp})


# -- CORS --------------------------------------------------------------------------------------------------

READ_METHODS = ["GET", "HEAD"]
WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
READ_HEADERS = ["Accept", "Accept-Language", "If-None-Match", "Content-Crs"]
WRITE_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "If-Match"]
EXPOSE_HEADERS = ["ETag", "Content-Crs", "Link", "Location", "Retry-After", "Content-Language"]


def install_cors(app: FastAPI, a: ApiSettings) -> None:
    """No CORS middleware at all unless origins are configured (a foreign page can then read nothing and its
    preflights fail). Configured: reads from the listed origins; writes only when enabled, for named origins."""
    if not a.cors_origins:
        return
    writes = a.cors_allow_writes
    app.add_middleware(CORSMiddleware, allow_origins=a.cors_origins, allow_credentials=False,
                       allow_methods=READ_METHODS + (WRITE_METHODS if writes else []),
                       allow_headers=READ_HEADERS + (WRITE_HEADERS if writes else []),
                       expose_headers=EXPOSE_HEADERS, max_age=600)


# -- rate limits -------------------------------------------------------------------------------------------

def client_ip(scope: Scope) -> str:
    """The client address as slowapi's `get_remote_address` reads it (uvicorn's proxy_headers have already
    replaced it with X-Forwarded-For when the proxy is trusted)."""
    client = scope.get("client")
    return client[0] if client else "127.0.0.1"


class RateLimits:
    """slowapi's limiter (moving windows from the `limits` library) with datso's limits from settings. One
    limiter per app; counters live in its storage: `memory://` (the default) keeps them per worker process, so
    with `--workers N` a client may get up to N times the limit. To share them, point
    `DATSO_RATE_LIMIT_STORAGE_URI` at `redis://host:6379/0` or `memcached://host:11211` (the `limits` storage
    URIs; they need the `redis` or `pymemcache` package installed). Concurrent requests of one client may pass
    the failed-auth check together before their failures are counted (at most one burst of in-flight requests
    over the limit)."""

    def __init__(self, a: ApiSettings) -> None:
        from limits import parse_many

        self.enabled = a.rate_limit_enabled
        self.limiter = Limiter(key_func=get_remote_address, storage_uri=a.rate_limit_storage_uri,
                               strategy="moving-window", enabled=a.rate_limit_enabled, key_prefix="datso")
        self.items = {"auth": parse_many(a.rate_limit_auth_failures), "search": parse_many(a.rate_limit_search),
                      "export": parse_many(a.rate_limit_exports), "login": parse_many(a.rate_limit_login),
                      "trace": parse_many(a.rate_limit_trace)}

    def retry_after(self, kind: str, ip: str, hit: bool) -> int | None:
        """Seconds to wait when `ip` is over the `kind` limits (None: go ahead); `hit` counts this request.
        A storage failure lets the request through (logged): a limiter must not take the service down."""
        if not self.enabled:
            return None
        strategy = self.limiter.limiter
        try:
            for item in self.items[kind]:
                ok = strategy.hit(item, kind, ip) if hit else strategy.test(item, kind, ip)
                if not ok:
                    reset = strategy.get_window_stats(item, kind, ip).reset_time
                    return max(1, math.ceil(reset - time.time()))
        except Exception:   # noqa: BLE001 - e.g. redis unreachable
            log.warning("rate-limit storage failed; request let through", exc_info=True)
        return None

    def failed_auth(self, ip: str) -> None:
        self.retry_after("auth", ip, hit=True)


def too_many(request: Request, seconds: int) -> StarletteHTTPException:
    vi = request_lang(request) == "vi"
    return StarletteHTTPException(429, (
        f"Quá nhiều yêu cầu từ địa chỉ này; thử lại sau {seconds} giây" if vi
        else f"Too many requests from this address; retry in {seconds} s"), headers={"Retry-After": str(seconds)})


TRACE_PATHS = ("/trace/", "/01/", "/qr/")   # public trace lookups (api/trace.py)


class LookupRateLimit:
    """Pure-ASGI middleware: per-IP limits on the public lookups (`/search`, Folium exports `/maps/*.html`);
    every other path passes with one string comparison."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.limits.enabled:
            path: str = scope["path"]
            kind = "search" if path == "/search" else "export" if _is_folium(path) else None
            if kind is None and path.startswith(TRACE_PATHS):
                kind = "trace"
            if kind is not None:
                wait = self.limits.retry_after(kind, client_ip(scope), hit=True)
                if wait is not None:
                    request = Request(scope)
                    exc = too_many(request, wait)
                    response = render(request, 429, str(exc.detail), exc.headers)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def install_rate_limits(app: FastAPI, a: ApiSettings) -> None:
    """The limiter (`app.state.rate_limits`, also read by api/auth.py) and the lookup limits (inside CORS, so
    a 429 to an allowed origin is readable by its page)."""
    app.state.rate_limits = RateLimits(a)
    app.add_middleware(LookupRateLimit, limits=app.state.rate_limits)


def install_headers(app: FastAPI, a: ApiSettings, basemap_url: str | None, docs_path: str | None) -> None:
    """Trusted hosts, security headers and the docs page; call last: `SecurityHeaders` must be outermost."""
    hosts = trusted_hosts(a)
    if "*" in hosts:
        log.warning("DATSO_TRUSTED_HOSTS allows any Host: %s", (
            "links use DATSO_PUBLIC_URL, but trailing-slash redirects still follow the Host header" if a.public_url
            else "absolute links follow the request's Host header (unsafe behind a shared cache)"))
    app.state.host_policy = HostPolicy(hosts)
    if docs_path:
        install_docs(app, docs_path)
    app.add_middleware(SecurityHeaders, hosts=app.state.host_policy,
                       page_policy=page_csp(a.public_url, basemap_url), referrer_policy=a.referrer_policy)
