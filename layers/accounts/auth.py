"""API keys: created once (the secret is shown once), stored as SHA-256 hashes in `api_keys`, listed and
revoked by name. Every key belongs to a user (layers/accounts/users.py) whose role and scope it carries.

`create_key(dsn, name, role)` keeps the old `datso keys create --name --role` contract: without `user=` the key
is attached to the user of the same name, created when missing with the reach keys had before users existed
(admin: national; officer: every 2025 province in `admin_units`). With `user=` the key is one more key of that
existing user. The API looks a key up by its hash (api/auth.py, `users.LOOKUP_SQL`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gis.errors import BilingualError
from layers.accounts.principal import PROVINCE_SCHEME, ROLES
from layers.accounts.users import AccountError, create_user, hash_secret, new_key
from layers.store.connect import connect

PREFIX = "datso_"


class ApiKeyError(BilingualError):
    """A key request that cannot be honoured (unknown name, bad role...)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str
    created_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    user: str | None = None

    @property
    def actor(self) -> str:
        """What the audit trail records (`history.actor`): the user's name."""
        return self.user or self.name


def create_key(dsn: str, name: str, role: str | None = None, user: str | None = None) -> str:
    """Store a new key and return its secret (only its hash is kept); see the module doc for `user`."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiKeyError("Tên khóa phải có 1–100 ký tự", "The key name must be 1-100 characters")
    if role is not None and role not in ROLES:
        raise ApiKeyError(f"Vai trò '{role}' không hợp lệ; dùng: {', '.join(ROLES)}",
                          f"Unknown role '{role}'; use one of: {', '.join(ROLES)}")
    try:
        if user is not None:
            with connect("writer", dsn=dsn) as conn:
                row = conn.execute("SELECT role FROM users WHERE name = %s", [user]).fetchone()
            if row is None:
                raise ApiKeyError(f"Không có người dùng '{user}'", f"No user named '{user}'")
            if role is not None and row[0] != role:
                raise ApiKeyError(f"Người dùng '{user}' có vai trò '{row[0]}', không phải '{role}'",
                                  f"User '{user}' has the role '{row[0]}', not '{role}'")
            with connect("writer", dsn=dsn) as conn:
                if conn.execute("SELECT 1 FROM api_keys WHERE name = %s", [name]).fetchone():
                    raise ApiKeyError(f"Đã có khóa tên '{name}'", f"A key named '{name}' already exists")
            return new_key(dsn, user, name)[1]
        if role is None:
            raise ApiKeyError("Cần --role hoặc --user", "--role or --user is needed")
        with connect("writer", dsn=dsn) as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE name = %s", [name]).fetchone():
                raise ApiKeyError(f"Đã có khóa tên '{name}'", f"A key named '{name}' already exists")
            existing = conn.execute("SELECT role FROM users WHERE name = %s", [name]).fetchone()
            provinces = [r[0] for r in conn.execute(
                "SELECT DISTINCT code FROM admin_units WHERE level = 'province' AND scheme = %s "
                "AND char_length(code) = 2 ORDER BY code", [PROVINCE_SCHEME]).fetchall()]
        if existing is not None:
            if existing[0] != role:
                raise ApiKeyError(f"Người dùng '{name}' có vai trò '{existing[0]}', không phải '{role}'",
                                  f"User '{name}' has the role '{existing[0]}', not '{role}'")
            return new_key(dsn, name, name)[1]
        national = role == "admin" or not provinces
        return create_user(dsn, name, role, provinces=() if national else provinces, national=national).key
    except AccountError as exc:
        raise ApiKeyError(exc.vi, exc.en) from None


def list_keys(dsn: str) -> list[ApiKey]:
    with connect("writer", dsn=dsn) as conn:   # the primary: a key just created or revoked shows at once
        rows = conn.execute("SELECT k.name, u.role, k.created_at, k.revoked_at, u.name FROM api_keys k "
                            "JOIN users u ON u.id = k.user_id ORDER BY k.name").fetchall()
    return [ApiKey(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def revoke_key(dsn: str, name: str) -> None:
    with connect("writer", dsn=dsn) as conn:
        cur = conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", [name])
        if cur.rowcount == 0:
            raise ApiKeyError(f"Không có khóa đang hoạt động tên '{name}'", f"No active key named '{name}'")


__all__ = ["PREFIX", "ROLES", "ApiKey", "ApiKeyError", "create_key", "hash_secret", "list_keys", "revoke_key"]
