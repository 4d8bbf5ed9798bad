"""SQL text built from registry identifiers (table and column names), never from user text."""

from __future__ import annotations


def quote_ident(ident: str) -> str:
    """Quote a registry identifier for SQL; anything but letters, digits and `_` is refused (ValueError)."""
    if not ident.replace("_", "").isalnum():
        raise ValueError(f"not a registry identifier: {ident!r}")
    return '"' + ident + '"'
