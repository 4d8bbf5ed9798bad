"""API keys for officers and admins: created once (the secret is shown once), stored as SHA-256 hashes in
`api_keys`, listed and revoked by name. The API looks a key up by its hash (api/auth.py)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import psycopg

from gis.errors import BilingualError
from layers.store.connect import connect

ROLES = ("officer", "admin")
PREFIX = "datso_"


class ApiKeyError(BilingualError):
    """A key request that cannot be honoured (unknown name, bad role...)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    @property
    def actor(self) -> str:
        """What the audit trail records (`history.actor`)."""
        return f"{self.role}:{self.name}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(dsn: str, name: str, role: str) -> str:
    """Store a new key and return its secret (only its hash is kept)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiKeyError("Tên khóa phải có 1–100 ký tự", "The key name must be 1-100 characters")
    if role not in ROLES:
        raise ApiKeyError(f"Vai trò '{role}' không hợp lệ; dùng: {', '.join(ROLES)}",
                        f"Unknown role '{role}'; use one of: {', '.join(ROLES)}")
    secret = PREFIX + secrets.token_urlsafe(32)
    with connect("writer", dsn=dsn) as conn:
        try:
            conn.execute("INSERT INTO api_keys (name, role, key_hash) VALUES (%s, %s, %s)",
                         [name, role, hash_secret(secret)])
        except psycopg.errors.UniqueViolation:
            raise ApiKeyError(f"Đã có khóa tên '{name}'", f"A key named '{name}' already exists") from None
    return secret


def list_keys(dsn: str) -> list[ApiKey]:
    with connect("writer", dsn=dsn) as conn:   # the primary: a key just created or revoked shows at once
        rows = conn.execute("SELECT name, role, created_at, revoked_at FROM api_keys ORDER BY name").fetchall()
    return [ApiKey(r[0], r[1], r[2], r[3]) for r in rows]


def revoke_key(dsn: str, name: str) -> None:
    with connect("writer", dsn=dsn) as conn:
        cur = conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", [name])
        if cur.rowcount == 0:
            raise ApiKeyError(f"Không có khóa đang hoạt động tên '{name}'", f"No active key named '{name}'")


LOOKUP_SQL = "SELECT name, role FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
