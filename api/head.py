"""HEAD and OPTIONS on every route, once for the whole app.

HEAD (RFC 9110 §9.3.2): the request runs as a GET through the same stack (routing, the tile fast path,
conditional requests, compression, static files) and the client gets the GET's status and headers - Content-Type,
ETag, Content-Length where known - without the body. GDAL's HTTP layer and /vsicurl/ send HEAD before a GET (and
log a retry on a 405).

OPTIONS (RFC 9110 §9.3.7): 204 with `Allow` listing the path's methods. QGIS's OAPIF provider sends OPTIONS to
/items and /items/{id} and offers editing only if `Allow` names POST, PUT, PATCH or DELETE. The methods are the
routing's own answer (the 405 handler of api/openapi.py reads them from the API document), so they cannot
drift from the routes. A CORS preflight (Access-Control-Request-Method) is left to the CORS middleware."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAndOptions:
    """Pure-ASGI middleware (outermost): HEAD → GET inside, the body dropped on the way out; a plain OPTIONS →
    the routing's 405 turned into 204 + Allow."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            if any(k == b"access-control-request-method" for k, _ in scope["headers"]):
                await self.app(scope, receive, send)      # a CORS preflight
                return
            await self.app(scope, receive, _options(send))
            return
        # a new scope: the server keeps its own (method HEAD) and so sends no body either
        await self.app({**scope, "method": "GET"}, receive, _headers_only(send))


def _headers_only(send: Send) -> Send:
    done = False

    async def wrapped(message: Message) -> None:
        nonlocal done
        if message["type"] == "http.response.body":
            if done or message.get("more_body", False):
                return           # a streamed body: its chunks are dropped, the last one ends the response
            done = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send(message)

    return wrapped


def _options(send: Send) -> Send:
    answered = False

    async def wrapped(message: Message) -> None:
        nonlocal answered
        if message["type"] == "http.response.start" and message["status"] == 405:
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() == b"allow"]
            if headers:
                methods = [m.strip() for m in headers[0][1].decode("latin-1").split(",") if m.strip()]
                if "GET" in methods:
                    methods.append("HEAD")
                methods.append("OPTIONS")
                keep = [(k, v) for k, v in message.get("headers", [])
                        if k.lower() not in (b"allow", b"content-type", b"content-length", b"content-language")]
                answered = True
                await send({"type": "http.response.start", "status": 204,
                            "headers": [*keep, (b"allow", ", ".join(sorted(set(methods))).encode())]})
                return
        if answered and message["type"] == "http.response.body":
            if not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send(message)

    return wrapped
