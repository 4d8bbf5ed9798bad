"""Conditional GETs: THE rule for `If-None-Match` against an entity tag, used by every cached response
(documents and items in api/features.py, tiles and the tile fast path in api/tiles.py)."""

from __future__ import annotations

import hashlib


def content_etag(body: bytes) -> str:
    """A strong entity tag of a representation's bytes."""
    return '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/").strip('"')


def etag_matches(if_none_match: str | None, etag: str, *same: str) -> bool:
    """True when the response may be a 304: `If-None-Match` is `*`, or one of the entity tags it lists is
    `etag` (or one of `same`: other tags of the same content, e.g. a tile's gzip and identity encodings) under
    the weak comparison of RFC 9110 §13.1.2 and §8.8.3.2 (a `W/` prefix is ignored; quotes are too, for
    clients that drop them)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    ours = {_opaque(t) for t in (etag, *same)}
    return any(_opaque(t) in ours for t in if_none_match.split(","))
