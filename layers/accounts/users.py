"""Users: a role, a scope and an optional argon2 password; their API keys and sign-in sessions.

    secret = create_user(dsn, "lan", "officer", provinces=["86"]).key   # the first key, shown once
    token = login(dsn, "lan", "…", lifetime_minutes=480)              # a session token, or None

Every function takes where to write as `target`: a libpq DSN (the CLI, tests) or anything with a
`connection()` context manager (the API's write pool). Always the primary: a user just created, disabled or
signed out shows at once. Secrets (keys, session tokens) are stored as SHA-256 hashes, passwords as argon2id
hashes (argon2-cffi's defaults). Disabling a user revokes all their keys and ends their sessions in the same
transaction (and the lookup also checks the user), so nothing they hold works any more.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gis.errors import BilingualError
from layers.accounts.principal import ALL_ROLES, PROVINCE_SCHEME, TRACE_ROLES, Principal
from layers.store.connect import connect

KEY_PREFIX = "datso_"
SESSION_PREFIX = "datsos_"
_PROVINCE = re.compile(r"^[0-9]{2}$")
_COMMUNE = re.compile(r"^[0-9]{5}$")
_NAME = re.compile(r"^[\w.@+-]{1,100}$")
_hasher = PasswordHasher()
# verified when the user is unknown, so that an unknown name costs the same time as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(BilingualError):
    """A user request that cannot be honoured (unknown user, bad scope, duplicate name...)."""

    def __init__(self, vi: str, en: str, status: int = 400, field_name: str | None = None) -> None:
        super().__init__(vi, en, status)
        self.field_name = field_name

    def members(self) -> dict[str, Any]:
        return {"errors": [{"field": self.field_name, "message": self.en}]} if self.field_name else {}


class HasConnection(Protocol):
    def connection(self) -> AbstractContextManager[psycopg.Connection]: ...


Target = str | HasConnection


@contextmanager
def _connect(target: Target) -> Iterator[psycopg.Connection]:
    if isinstance(target, str):
        with connect("writer", dsn=target) as conn:
            yield conn
    else:
        with target.connection() as conn:
            try:
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    name: str
    role: str
    national: bool = False
    provinces: tuple[str, ...] = ()
    communes: tuple[str, ...] = ()
    display_name: str | None = None
    has_password: bool = False
    created_at: dt.datetime | None = None
    disabled_at: dt.datetime | None = None
    keys: int = 0                                   # active keys
    areas: tuple[str, ...] = ()                     # producer: growing-area codes
    facilities: tuple[str, ...] = ()                # packer: packing-house codes

    @property
    def status(self) -> str:
        return "disabled" if self.disabled_at else "active"

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, frozenset(self.provinces), frozenset(self.communes), self.national,
                         self.display_name, areas=frozenset(self.areas), facilities=frozenset(self.facilities))

    def scope_text(self, lang: str = "en") -> str:
        return self.principal.scope_text(lang)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name, "role": self.role,
                "scope": {"national": self.national, "provinces": list(self.provinces),
                          "communes": list(self.communes),
                          **({"areas": list(self.areas)} if self.role == "producer" else {}),
                          **({"facilities": list(self.facilities)} if self.role == "packer" else {})},
                "status": self.status, "has_password": self.has_password, "active_keys": self.keys,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None}


@dataclass(frozen=True)
class Created:
    user: User
    key: str                        # the new API key's secret (shown once)
    key_name: str


_USER_SQL = ("SELECT u.name, u.role, u.national, u.provinces, u.communes, u.display_name, "
             "u.password_hash IS NOT NULL, u.created_at, u.disabled_at, "
             "(SELECT count(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL), u.areas, "
             "u.facilities FROM users u ")


def _user(r: Sequence[Any]) -> User:
    return User(r[0], r[1], bool(r[2]), tuple(r[3] or ()), tuple(r[4] or ()), r[5], bool(r[6]), r[7], r[8],
                int(r[9]), tuple(r[10] or ()), tuple(r[11] or ()))


# -- validation ----------------------------------------------------------------------------------------------

def check_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise AccountError("Tên người dùng phải có 1–100 ký tự: chữ, số, . _ - @ +",
                           "A user name must be 1-100 characters: letters, digits, . _ - @ +", 422, "name")
    return name


def check_role(role: str) -> str:
    if role not in ALL_ROLES:
        raise AccountError(f"Vai trò '{role}' không hợp lệ; dùng: {', '.join(ALL_ROLES)}",
                           f"Unknown role '{role}'; use one of: {', '.join(ALL_ROLES)}", 422, "role")
    return role


@dataclass(frozen=True)
class Scope:
    national: bool = False
    provinces: tuple[str, ...] = ()
    communes: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()
    facilities: tuple[str, ...] = ()


def check_trace_scope(conn: psycopg.Connection, role: str, areas: Iterable[str], facilities: Iterable[str]
                      ) -> Scope:
    """A producer's growing-area codes or a packer's packing-house codes, each known to the database."""
    codes = sorted({str(c).strip() for c in (areas if role == "producer" else facilities) if str(c).strip()})
    other = [c for c in (facilities if role == "producer" else areas) if str(c).strip()]
    fld, table = ("areas", "growing_areas") if role == "producer" else ("facilities", "packing_facilities")
    opt = "areas, --area" if role == "producer" else "facilities, --facility"
    wrong = "facilities, --facility" if role == "producer" else "areas, --area"
    if other:
        raise AccountError(f"Vai trò {role} không nhận mã {'cơ sở đóng gói' if role == 'producer' else 'vùng trồng'}"
                           f" ({wrong})", f"A {role} takes no {'packing-house' if role == 'producer' else 'area'} "
                           f"codes ({wrong})", 422, fld)
    if not codes:
        raise AccountError(f"Cần ít nhất một mã {'vùng trồng' if role == 'producer' else 'cơ sở đóng gói'} ({opt})",
                           f"At least one {'growing-area' if role == 'producer' else 'packing-house'} code is needed "
                           f"({opt})", 422, fld)
    known = {r[0] for r in conn.execute(f"SELECT code FROM {table} WHERE code = ANY(%s)",  # noqa: S608 - fixed names
                                        [codes]).fetchall()}
    missing = [c for c in codes if c not in known]
    if missing:
        raise AccountError(f"Không có mã {', '.join(missing)} trong {table}", f"No {', '.join(missing)} in {table}",
                           422, fld)
    return Scope(False, (), (), tuple(codes) if role == "producer" else (), tuple(codes) if role == "packer" else ())


def check_scope_spec(conn: psycopg.Connection, role: str, provinces: Iterable[str], communes: Iterable[str],
                     national: bool) -> Scope:
    """A user's scope, checked: province codes (2 digits) and commune codes (5 digits) of the 2025 scheme known
    to `admin_units`, each commune inside one of the provinces; national only for admins (and then no list)."""
    provs = sorted({str(p).strip() for p in provinces if str(p).strip()})
    comms = sorted({str(c).strip() for c in communes if str(c).strip()})
    if national:
        if role != "admin":
            raise AccountError("Chỉ quản trị viên (admin) mới có phạm vi toàn quốc",
                               "Only admins may have the national scope", 422, "national")
        if provs or comms:
            raise AccountError("Phạm vi toàn quốc không kèm danh sách tỉnh/xã",
                               "A national scope takes no province or commune list", 422, "provinces")
        return Scope(True)
    if not provs:
        raise AccountError("Cần ít nhất một tỉnh (--province, mã 2 chữ số)" + (" hoặc phạm vi toàn quốc"
                                                                              if role == "admin" else ""),
                           "At least one province is needed (--province, a 2-digit code)" + (
                               " or the national scope" if role == "admin" else ""), 422, "provinces")
    for p in provs:
        if not _PROVINCE.match(p):
            raise AccountError(f"Mã tỉnh '{p}' không hợp lệ (2 chữ số, theo QĐ 19/2025)",
                               f"Province code '{p}' is invalid (2 digits, 2025 scheme)", 422, "provinces")
    for c in comms:
        if not _COMMUNE.match(c):
            raise AccountError(f"Mã xã '{c}' không hợp lệ (5 chữ số, theo QĐ 19/2025)",
                               f"Commune code '{c}' is invalid (5 digits, 2025 scheme)", 422, "communes")
    known = {r[0] for r in conn.execute("SELECT code FROM admin_units WHERE level = 'province' AND scheme = %s "
                                        "AND code = ANY(%s)", [PROVINCE_SCHEME, provs]).fetchall()}
    missing = [p for p in provs if p not in known]
    if missing:
        raise AccountError(f"Không có tỉnh {', '.join(missing)} trong đơn vị hành chính 2025 (nạp dữ liệu hành "
                           "chính trước)", f"No province {', '.join(missing)} among the 2025 administrative units "
                                           "(load the administrative units first)", 422, "provinces")
    if comms:
        parents: dict[str, str] = dict(conn.execute("SELECT code, parent_code FROM admin_units WHERE level = 'commune' AND "
                                    "scheme = %s AND code = ANY(%s)", [PROVINCE_SCHEME, comms]).fetchall())
        for c in comms:
            if c not in parents:
                raise AccountError(f"Không có xã {c} trong đơn vị hành chính 2025",
                                   f"No commune {c} among the 2025 administrative units", 422, "communes")
            if parents[c] not in provs:
                raise AccountError(f"Xã {c} thuộc tỉnh {parents[c]}, không thuộc phạm vi tỉnh {', '.join(provs)}",
                                   f"Commune {c} is in province {parents[c]}, not in {', '.join(provs)}", 422,
                                   "communes")
    return Scope(False, tuple(provs), tuple(comms))


def _check_password(password: str) -> str:
    if len(password) < 8 or len(password) > 1024:
        raise AccountError("Mật khẩu phải có 8–1024 ký tự", "A password must be 8-1024 characters", 422, "password")
    return _hasher.hash(password)


# -- users -----------------------------------------------------------------------------------------------------

def _unique_key_name(conn: psycopg.Connection, base: str) -> str:
    taken = {r[0] for r in conn.execute("SELECT name FROM api_keys WHERE name = %s OR name LIKE %s",
                                        [base, base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                                         + "-%"]).fetchall()}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _insert_key(conn: psycopg.Connection, user_id: int, role: str, key_name: str) -> str:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute("INSERT INTO api_keys (name, role, key_hash, user_id) VALUES (%s, %s, %s, %s)",
                 [key_name, role, hash_secret(secret), user_id])
    return secret


def _user_row(conn: psycopg.Connection, name: str, lock: bool = False) -> tuple[int, str, bool]:
    q = ("SELECT id, role, disabled_at IS NOT NULL FROM users WHERE name = %s FOR UPDATE" if lock
         else "SELECT id, role, disabled_at IS NOT NULL FROM users WHERE name = %s")
    row = conn.execute(q, [name]).fetchone()
    if row is None:
        raise AccountError(f"Không có người dùng '{name}'", f"No user named '{name}'", 404, "name")
    return int(row[0]), str(row[1]), bool(row[2])


def create_user(target: Target, name: str, role: str, provinces: Iterable[str] = (), communes: Iterable[str] = (),
                national: bool = False, display_name: str | None = None, password: str | None = None,
                areas: Iterable[str] = (), facilities: Iterable[str] = ()) -> Created:
    """Create a user with a first API key (named like the user) and return its secret (shown once). A producer
    is scoped by growing-area codes (`areas`), a packer by packing-house codes (`facilities`)."""
    name, role = check_name(name), check_role(role)
    pw_hash = _check_password(password) if password is not None else None
    with _connect(target) as conn:
        scope = (check_trace_scope(conn, role, areas, facilities) if role in TRACE_ROLES
                 else check_scope_spec(conn, role, provinces, communes, national))
        try:
            with conn.transaction():
                uid = conn.execute(
                    "INSERT INTO users (name, display_name, role, national, provinces, communes, password_hash, "
                    "areas, facilities) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    [name, (display_name or "").strip() or None, role, scope.national, list(scope.provinces),
                     list(scope.communes), pw_hash, list(scope.areas), list(scope.facilities)]).fetchone()
        except psycopg.errors.UniqueViolation:
            raise AccountError(f"Đã có người dùng tên '{name}'", f"A user named '{name}' already exists", 409,
                               "name") from None
        assert uid is not None
        key_name = _unique_key_name(conn, name)
        secret = _insert_key(conn, int(uid[0]), role, key_name)
        user = _user(conn.execute(_USER_SQL + "WHERE u.id = %s", [uid[0]]).fetchone() or ())
    return Created(user, secret, key_name)


def get_user(target: Target, name: str) -> User:
    with _connect(target) as conn:
        row = conn.execute(_USER_SQL + "WHERE u.name = %s", [name]).fetchone()
    if row is None:
        raise AccountError(f"Không có người dùng '{name}'", f"No user named '{name}'", 404, "name")
    return _user(row)


def principal_for(target: Target, name: str) -> Principal:
    """The Principal of an active user (`datso import --as NAME`: the CLI acting as that user, with their scope)."""
    user = get_user(target, name)
    if user.disabled_at is not None:
        raise AccountError(f"Người dùng '{name}' đã bị vô hiệu hóa", f"User '{name}' is disabled", 403, "name")
    return user.principal


def code_provinces(target: Target, areas: Iterable[str], facilities: Iterable[str]) -> dict[str, str | None]:
    """{growing-area or packing-house code: its province} (by the feature's 2025 commune; a producer's or
    packer's place for a province-scoped admin); None for a known code whose commune is not a 2025 commune.
    Codes that are not known are left out."""
    a, f = sorted(set(areas)), sorted(set(facilities))
    if not a and not f:
        return {}
    q = ("SELECT x.code, min(u.parent_code) FROM (SELECT code, commune_code FROM growing_areas WHERE code = ANY(%s) "
         "UNION ALL SELECT code, commune_code FROM packing_facilities WHERE code = ANY(%s)) x "
         "LEFT JOIN admin_units u ON u.code = x.commune_code AND u.level = 'commune' AND u.scheme = %s "
         "GROUP BY x.code")
    with _connect(target) as conn:
        return {str(c): str(p) if p else None for c, p in conn.execute(q, [a, f, PROVINCE_SCHEME]).fetchall()}


def list_users(target: Target) -> list[User]:
    with _connect(target) as conn:
        return [_user(r) for r in conn.execute(_USER_SQL + "ORDER BY u.name").fetchall()]


def disable_user(target: Target, name: str) -> User:
    """Disable a user, revoke all their keys and end their sessions, in one transaction."""
    return update_user(target, name, disabled=True)


def update_user(target: Target, name: str, disabled: bool | None = None, role: str | None = None,
                display_name: str | None = None, national: bool | None = None,
                provinces: Iterable[str] | None = None, communes: Iterable[str] | None = None,
                password: str | None = None, areas: Iterable[str] | None = None,
                facilities: Iterable[str] | None = None) -> User:
    """Change a user. Disabling revokes every key and session at once; enabling again does not bring keys back
    (make a new one). A scope change applies to the next request of every key and session of the user; a
    producer's `areas` / a packer's `facilities` replace the codes they had (each checked, at least one)."""
    with _connect(target) as conn:
        uid, cur_role, _ = _user_row(conn, name, lock=True)
        row = conn.execute("SELECT national, provinces, communes FROM users WHERE id = %s", [uid]).fetchone()
        assert row is not None
        new_role = check_role(role) if role is not None else cur_role
        if any(v is not None for v in (national, provinces, communes)) or role is not None:
            nat = national if national is not None else (bool(row[0]) and provinces is None)
            provs = list(provinces) if provinces is not None else ([] if nat else list(row[1] or ()))
            comms = list(communes) if communes is not None else ([] if nat else list(row[2] or ()))
            scope = check_scope_spec(conn, new_role, provs, comms, nat)
            conn.execute("UPDATE users SET role = %s, national = %s, provinces = %s, communes = %s WHERE id = %s",
                         [new_role, scope.national, list(scope.provinces), list(scope.communes), uid])
            conn.execute("UPDATE api_keys SET role = %s WHERE user_id = %s", [new_role, uid])
        if (areas is not None or facilities is not None) and cur_role in TRACE_ROLES:
            codes = check_trace_scope(conn, cur_role, areas or (), facilities or ())
            conn.execute("UPDATE users SET areas = %s, facilities = %s WHERE id = %s",
                         [list(codes.areas), list(codes.facilities), uid])
        if display_name is not None:
            conn.execute("UPDATE users SET display_name = %s WHERE id = %s", [display_name.strip() or None, uid])
        if password is not None:
            conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", [_check_password(password), uid])
            conn.execute("DELETE FROM user_sessions WHERE user_id = %s", [uid])
        if disabled is True:
            conn.execute("UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = %s", [uid])
            conn.execute("UPDATE api_keys SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", [uid])
            conn.execute("DELETE FROM user_sessions WHERE user_id = %s", [uid])
        elif disabled is False:
            conn.execute("UPDATE users SET disabled_at = NULL WHERE id = %s", [uid])
        out = conn.execute(_USER_SQL + "WHERE u.id = %s", [uid]).fetchone()
    assert out is not None
    return _user(out)


def new_key(target: Target, name: str, key_name: str | None = None) -> tuple[str, str]:
    """A new API key for an active user: (key name, secret shown once)."""
    with _connect(target) as conn:
        uid, role, disabled = _user_row(conn, name)
        if disabled:
            raise AccountError(f"Người dùng '{name}' đã bị vô hiệu hóa", f"User '{name}' is disabled", 409, "name")
        kname = _unique_key_name(conn, check_name(key_name) if key_name else name)
        try:
            with conn.transaction():
                secret = _insert_key(conn, uid, role, kname)
        except psycopg.errors.UniqueViolation:
            raise AccountError(f"Đã có khóa tên '{kname}'", f"A key named '{kname}' already exists", 409,
                               "key_name") from None
    return kname, secret


# -- sign-in sessions ----------------------------------------------------------------------------------------

def login(target: Target, name: str, password: str, lifetime_minutes: int) -> tuple[str, dt.datetime] | None:
    """(session token, expiry) when the name and password match an active user; None otherwise (unknown user,
    disabled user, no password set and wrong password alike, in about the same time)."""
    with _connect(target) as conn:
        row = conn.execute("SELECT id, password_hash FROM users WHERE name = %s AND disabled_at IS NULL",
                           [name]).fetchone()
        stored = row[1] if row is not None and row[1] else _DUMMY_HASH
        try:
            ok = _hasher.verify(stored, password) and row is not None and row[1] is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None:
            return None
        if _hasher.check_needs_rehash(stored):
            conn.execute("UPDATE users SET password_hash = %s WHERE id = %s", [_hasher.hash(password), row[0]])
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = conn.execute(
            "INSERT INTO user_sessions (user_id, token_hash, expires_at) VALUES (%s, %s, now() + make_interval("
            "mins => %s)) RETURNING expires_at", [row[0], hash_secret(token), lifetime_minutes]).fetchone()
        conn.execute("DELETE FROM user_sessions WHERE user_id = %s AND expires_at < now()", [row[0]])
    assert expires is not None
    return token, expires[0]


def logout(target: Target, token: str) -> bool:
    """End a session (its token stops working at once); False when the token is no session."""
    with _connect(target) as conn:
        cur = conn.execute("DELETE FROM user_sessions WHERE token_hash = %s", [hash_secret(token)])
        return cur.rowcount > 0


# the lookup of a bearer secret (an API key or a session token) to its active user, in one statement ($1: hash)
LOOKUP_SQL = """
SELECT u.name, u.role, u.national, u.provinces, u.communes, u.display_name, 'key' AS via, u.areas, u.facilities
FROM api_keys k JOIN users u ON u.id = k.user_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.disabled_at IS NULL
UNION ALL
SELECT u.name, u.role, u.national, u.provinces, u.communes, u.display_name, 'session' AS via, u.areas,
       u.facilities
FROM user_sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL
LIMIT 1
"""


def principal_from_row(row: Any) -> Principal:
    """The Principal of a LOOKUP_SQL row (asyncpg Record or tuple)."""
    return Principal(name=row[0], role=row[1], national=bool(row[2]), provinces=frozenset(row[3] or ()),
                     communes=frozenset(row[4] or ()), display_name=row[5], via=row[6],
                     areas=frozenset(row[7] or ()) if len(row) > 7 else frozenset(),
                     facilities=frozenset(row[8] or ()) if len(row) > 8 else frozenset())


__all__ = ["code_provinces", "LOOKUP_SQL", "AccountError", "Created", "User", "create_user", "disable_user", "get_user",
           "hash_secret", "list_users", "login", "logout", "new_key", "principal_for", "principal_from_row",
           "update_user"]
