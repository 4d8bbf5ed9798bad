"""HEAD on every GET route, once for the whole app (RFC 9110 §9.3.2): the request runs as a GET through the
same stack (routing, the tile fast path, conditional requests, compression, static files) and the client gets
the GET's status and headers - Content-Type, ETag, Content-Length where known - without the body.

GDAL, QGIS and link checkers send HEAD before a GET (GDAL's /vsicurl/ and its HTTP layer retry on a 405)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """Pure-ASGI middleware (outermost): HEAD → GET inside, the body dropped on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def send_headers_only(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.body":
                if done or message.get("more_body", False):
                    return           # a streamed body: its chunks are dropped, the last one ends the response
                done = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        # a new scope: the server keeps its own (method HEAD) and so sends no body either
        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
