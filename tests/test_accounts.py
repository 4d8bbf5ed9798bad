"""Accounts (issue 11): users with a role and a province scope, argon2 passwords, API keys that belong to a user,
sign-in sessions, the admin endpoints and the `datso users` CLI. Over real HTTP (a live uvicorn) against the
real PostGIS test database; the CLI runs as a real process (scripts read the key with `| tail -1`)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from layers.accounts.auth import create_key
from layers.accounts.users import create_user, hash_secret
from layers.settings import ApiSettings, Settings
from layers.store import db as dbmod
from layers.store import pgcluster

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = "application/problem+json"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def datso(settings: Settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real `datso` command (a process, as scripts run it) on the test database."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.dsn()}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, check=False)


@pytest.fixture(scope="module")
def server(sample_db: str, settings: Settings) -> Iterator[Any]:
    from conftest import LiveServer, free_port

    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["detail"]
    return body


@pytest.fixture(scope="module")
def national_admin(sample_db: str) -> str:
    return create_user(sample_db, uid("admin"), "admin", national=True).key


@pytest.fixture(scope="module")
def officer86(sample_db: str) -> tuple[str, str]:
    name = uid("officer")
    return name, create_user(sample_db, name, "officer", provinces=["86"], password="mật-khẩu-đủ-dài").key


# -- the CLI ---------------------------------------------------------------------------------------------------

def test_cli_create_prints_the_key_alone_on_the_last_line_and_it_works(settings: Settings, sample_db: str,
                                                                       http: httpx.Client) -> None:
    name = uid("lan")
    r = datso(settings, "users", "create", name, "--role", "officer", "--province", "86",
              "--display-name", "Nguyễn Thị Lan", "--password-stdin", stdin="một mật khẩu dài\n")
    assert r.returncode == 0, r.stderr
    key = r.stdout.rstrip("\n").splitlines()[-1]          # KEY=$(datso users create … | tail -1)
    assert key.startswith("datso_") and " " not in key and len(key) > 40
    me = http.get("/auth/me", headers=bearer(key))
    assert me.status_code == 200, me.text
    assert me.json() == {"name": name, "display_name": "Nguyễn Thị Lan", "role": "officer", "via": "key",
                         "scope": {"national": False, "provinces": ["86"], "communes": []}}
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT password_hash FROM users WHERE name = %s", [name]).fetchone()
        keys = c.execute("SELECT k.key_hash FROM api_keys k JOIN users u ON u.id = k.user_id WHERE u.name = %s",
                         [name]).fetchall()
    assert row is not None and row[0].startswith("$argon2id$") and "một mật khẩu" not in row[0]
    assert keys == [(hash_secret(key),)]                  # the key itself is never stored
    # and the password signs in
    s = http.post("/auth/login", json={"name": name, "password": "một mật khẩu dài"})
    assert s.status_code == 200, s.text


def test_cli_refuses_bad_scopes_naming_them(settings: Settings) -> None:
    cases = [(["--role", "officer"], "province"), (["--role", "officer", "--province", "8"], "'8'"),
             (["--role", "officer", "--province", "99"], "99"), (["--role", "officer", "--national"], "national"),
             (["--role", "officer", "--province", "86", "--commune", "12345"], "12345"),
             (["--role", "chief", "--province", "86"], "chief")]
    for args, word in cases:
        r = datso(settings, "users", "create", uid("bad"), *args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert word in r.stderr.replace("\n", " "), (args, r.stderr)
        assert "datso_" not in r.stdout


def test_cli_list_and_disable_stop_every_key_at_once(settings: Settings, sample_db: str, http: httpx.Client) -> None:
    name = uid("minh")
    first = create_user(sample_db, name, "officer", provinces=["86"], password="password-123").key
    r = datso(settings, "users", "key", name)
    assert r.returncode == 0, r.stderr
    second = r.stdout.strip().splitlines()[-1]
    token = http.post("/auth/login", json={"name": name, "password": "password-123"}).json()["token"]
    for secret in (first, second, token):
        assert http.get("/auth/me", headers=bearer(secret)).status_code == 200
    listed = datso(settings, "users", "list")
    assert listed.returncode == 0
    line = next(ln for ln in listed.stdout.splitlines() if name in ln)
    assert "officer" in line and "province 86" in line and "active" in line
    r = datso(settings, "users", "disable", name)
    assert r.returncode == 0, r.stderr
    for secret in (first, second, token):          # at once: keys revoked, sessions ended, user disabled
        problem(http.get("/auth/me", headers=bearer(secret)), 401)
    listed = datso(settings, "users", "list")
    assert "disabled" in next(ln for ln in listed.stdout.splitlines() if name in ln)
    problem(http.post("/auth/login", json={"name": name, "password": "password-123"}), 401)
    assert datso(settings, "users", "disable", uid("nobody")).returncode == 1


def test_keys_cli_still_works_and_keys_belong_to_users(settings: Settings, sample_db: str,
                                                       http: httpx.Client) -> None:
    name = uid("legacy")
    r = datso(settings, "keys", "create", "--name", name, "--role", "officer")
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[-1]
    me = http.get("/auth/me", headers=bearer(key)).json()
    assert me["name"] == name and me["role"] == "officer" and me["scope"]["provinces"] == ["86"]
    extra = datso(settings, "keys", "create", "--name", name + "-phone", "--user", name)
    assert extra.returncode == 0, extra.stderr
    assert http.get("/auth/me", headers=bearer(extra.stdout.strip().splitlines()[-1])).json()["name"] == name
    listed = datso(settings, "keys", "list").stdout
    assert name + "-phone" in listed
    assert datso(settings, "keys", "revoke", name).returncode == 0
    problem(http.get("/auth/me", headers=bearer(key)), 401)
    assert create_key(sample_db, uid("adm"), "admin")       # the library call the older tests use


# -- sign-in ---------------------------------------------------------------------------------------------------

def test_login_me_logout(http: httpx.Client, sample_db: str, officer86: tuple[str, str]) -> None:
    name, _ = officer86
    r = http.post("/auth/login", json={"name": name, "password": "mật-khẩu-đủ-dài"})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store" and "set-cookie" not in r.headers
    body = r.json()
    assert body["token_type"] == "Bearer" and body["user"]["name"] == name
    token = body["token"]
    me = http.get("/auth/me", headers=bearer(token))
    assert me.json() == {"name": name, "display_name": None, "role": "officer", "via": "session",
                         "scope": {"national": False, "provinces": ["86"], "communes": []}}
    with psycopg.connect(sample_db) as c:
        row = c.execute("SELECT expires_at - created_at FROM user_sessions WHERE token_hash = %s",
                        [hash_secret(token)]).fetchone()
    assert row is not None and row[0].total_seconds() == ApiSettings().session_lifetime_minutes * 60
    # a form post (the officer page without JavaScript) signs in too
    f = http.post("/auth/login", data={"name": name, "password": "mật-khẩu-đủ-dài"})
    assert f.status_code == 200 and f.json()["token"] != token
    assert http.post("/auth/logout", headers=bearer(token)).status_code == 204
    problem(http.get("/auth/me", headers=bearer(token)), 401)
    assert http.get("/auth/me", headers=bearer(f.json()["token"])).status_code == 200   # the other session lives


def test_wrong_password_and_unknown_user_answer_the_same(http: httpx.Client, officer86: tuple[str, str]) -> None:
    name, _ = officer86
    wrong = http.post("/auth/login", json={"name": name, "password": "not-the-password"})
    unknown = http.post("/auth/login", json={"name": uid("ghost"), "password": "not-the-password"})
    a, b = problem(wrong, 401), problem(unknown, 401)
    assert a == {**b, "instance": a["instance"]} and set(wrong.headers) - {"date"} == set(unknown.headers) - {"date"}
    en = problem(http.post("/auth/login?lang=en", json={"name": name, "password": "x" * 9}), 401)
    assert en["detail"] == "Wrong user name or password" and a["detail"] != en["detail"]
    missing = problem(http.post("/auth/login", json={"name": name}), 422)
    assert missing["errors"] == [{"field": "password", "message": "required"}]
    problem(http.post("/auth/login", json={"name": name, "password": "x", "role": "admin"}), 400)


def test_session_expiry(http: httpx.Client, sample_db: str, officer86: tuple[str, str]) -> None:
    name, _ = officer86
    token = http.post("/auth/login", json={"name": name, "password": "mật-khẩu-đủ-dài"}).json()["token"]
    assert http.get("/auth/me", headers=bearer(token)).status_code == 200
    with psycopg.connect(sample_db) as c:      # the clock moves past the expiry
        c.execute("UPDATE user_sessions SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
                  [hash_secret(token)])
    problem(http.get("/auth/me", headers=bearer(token)), 401)


def test_logout_with_an_api_key_is_refused(http: httpx.Client, officer86: tuple[str, str]) -> None:
    problem(http.post("/auth/logout", headers=bearer(officer86[1])), 400)
    problem(http.post("/auth/logout"), 401)


def test_login_is_rate_limited_per_name_and_ip(sample_db: str, settings: Settings,
                                               officer86: tuple[str, str]) -> None:
    from conftest import LiveServer, free_port

    from api.app import create_app

    strict = ApiSettings(rate_limit_login="3/minute")
    with LiveServer(create_app(settings=settings, api_settings=strict, dsn=sample_db), free_port()) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        name = officer86[0]
        for _ in range(3):
            problem(c.post("/auth/login", json={"name": name, "password": "wrong-password"}), 401)
        limited = problem(c.post("/auth/login", json={"name": name, "password": "mật-khẩu-đủ-dài"}), 429)
        assert int(c.post("/auth/login", json={"name": name, "password": "x"}).headers["retry-after"]) > 0
        assert limited["detail"]
        # another name from the same address is not blocked by this one's attempts
        problem(c.post("/auth/login", json={"name": uid("other"), "password": "wrong-password"}), 401)


# -- administration --------------------------------------------------------------------------------------------

def test_admin_endpoints_401_403(http: httpx.Client, officer86: tuple[str, str]) -> None:
    _, officer_key = officer86
    calls = [("GET", "/admin/users", None), ("POST", "/admin/users", {"name": "x", "role": "officer"}),
             ("GET", "/admin/users/x", None), ("PATCH", "/admin/users/x", {"disabled": True}),
             ("POST", "/admin/users/x/keys", None)]
    for method, path, body in calls:
        anon = http.request(method, path, json=body)
        problem(anon, 401)
        assert anon.headers["www-authenticate"] == "Bearer"
        problem(http.request(method, path, json=body, headers=bearer(officer_key)), 403)
        en = problem(http.request(method, path + "?lang=en", json=body, headers=bearer(officer_key)), 403)
        assert "Role 'officer' may not" in en["detail"]


def test_admin_manages_users(http: httpx.Client, sample_db: str, national_admin: str) -> None:
    h = bearer(national_admin)
    name = uid("hoa")
    r = http.post("/admin/users", headers=h, json={"name": name, "role": "officer", "provinces": ["86"],
                                                   "communes": ["28807"], "display_name": "Trần Hoa",
                                                   "password": "một-mật-khẩu"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/admin/users/{name}" and r.headers["cache-control"] == "no-store"
    created = r.json()
    assert created["user"]["scope"] == {"national": False, "provinces": ["86"], "communes": ["28807"]}
    key = created["key"]
    assert http.get("/auth/me", headers=bearer(key)).json()["scope"]["communes"] == ["28807"]
    assert any(u["name"] == name for u in http.get("/admin/users", headers=h).json()["users"])
    got = http.get(f"/admin/users/{name}", headers=h).json()
    assert got["status"] == "active" and got["has_password"] and got["active_keys"] == 1
    problem(http.post("/admin/users", headers=h, json={"name": name, "role": "officer", "provinces": ["86"]}), 409)
    # scope change applies to the next request of the same key
    p = http.patch(f"/admin/users/{name}", headers=h, json={"communes": []})
    assert p.status_code == 200 and p.json()["scope"]["communes"] == []
    assert http.get("/auth/me", headers=bearer(key)).json()["scope"]["communes"] == []
    k = http.post(f"/admin/users/{name}/keys", headers=h)
    assert k.status_code == 201
    second = k.json()["key"]
    assert http.get("/auth/me", headers=bearer(second)).json()["name"] == name
    d = http.patch(f"/admin/users/{name}", headers=h, json={"disabled": True})
    assert d.json()["status"] == "disabled" and d.json()["active_keys"] == 0
    for secret in (key, second):
        problem(http.get("/auth/me", headers=bearer(secret)), 401)
    problem(http.post(f"/admin/users/{name}/keys", headers=h), 409)
    problem(http.get(f"/admin/users/{uid('nobody')}", headers=h), 404)


def test_admin_bad_input_names_the_field(http: httpx.Client, sample_db: str, national_admin: str) -> None:
    h = bearer(national_admin)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"name": uid("a"), "role": "officer"}, 422, "provinces"),
        ({"name": uid("a"), "role": "boss", "provinces": ["86"]}, 422, "role"),
        ({"name": uid("a"), "role": "officer", "provinces": ["8x"]}, 422, "provinces"),
        ({"name": uid("a"), "role": "officer", "provinces": ["86"], "communes": ["99999"]}, 422, "communes"),
        ({"name": uid("a"), "role": "officer", "national": True}, 422, "national"),
        ({"name": uid("a"), "role": "officer", "provinces": ["86"], "password": "short"}, 422, "password"),
        ({"name": "có dấu cách", "role": "officer", "provinces": ["86"]}, 422, "name"),
        ({"name": uid("a"), "role": "officer", "provinces": 86}, 422, "provinces"),
        ({"name": uid("a"), "role": "officer", "provinces": ["86"], "superuser": True}, 400, "superuser"),
        ({"role": "officer", "provinces": ["86"]}, 422, "name"),
    ]
    with psycopg.connect(sample_db) as c:
        before = c.execute("SELECT count(*) FROM users").fetchone()
    for body, status, field in cases:
        b = problem(http.post("/admin/users?lang=en", headers=h, json=body), status)
        assert field in b["detail"] or any(e.get("field") == field for e in b.get("errors", [])), (body, b)
    with psycopg.connect(sample_db) as c:
        assert c.execute("SELECT count(*) FROM users").fetchone() == before
    problem(http.post("/admin/users", headers={**h, "Content-Type": "application/json"}, content=b"{nope"), 400)


def test_province_admin_stays_inside_their_province(http: httpx.Client, sample_db: str, national_admin: str) -> None:
    scoped = create_user(sample_db, uid("padmin"), "admin", provinces=["86"]).key
    h = bearer(scoped)
    other_national = uid("nat")
    create_user(sample_db, other_national, "admin", national=True)
    problem(http.post("/admin/users", headers=h, json={"name": uid("x"), "role": "admin", "national": True}), 403)
    assert other_national not in {u["name"] for u in http.get("/admin/users", headers=h).json()["users"]}
    problem(http.get(f"/admin/users/{other_national}", headers=h), 404)
    problem(http.patch(f"/admin/users/{other_national}", headers=h, json={"disabled": True}), 404)
    ok = http.post("/admin/users", headers=h, json={"name": uid("o"), "role": "officer", "provinces": ["86"]})
    assert ok.status_code == 201, ok.text


def test_admin_lists_creates_and_disables_producers_and_packers(http: httpx.Client, sample_db: str,
                                                                national_admin: str) -> None:
    """Producer/packer accounts are managed over /admin/users as with `datso users create NAME --role producer
    --area CODE`: listed with their role and scope (codes), created (first key once, it works for /auth/me),
    disabled (every key stops); a province admin sees and creates only those whose areas/houses lie in their
    provinces; bad codes and role changes name the field."""
    with psycopg.connect(sample_db) as c:
        area, area2 = [r[0] for r in c.execute(
            "SELECT g.code FROM growing_areas g JOIN admin_units a ON a.code = g.commune_code AND "
            "a.level = 'commune' AND a.scheme = '2025' AND a.parent_code = '86' WHERE g.code IS NOT NULL "
            "ORDER BY g.code LIMIT 2").fetchall()]
        house = c.execute("SELECT code FROM packing_facilities WHERE code IS NOT NULL AND commune_code IN (SELECT code "
                          "FROM admin_units WHERE level = 'commune' AND scheme = '2025' AND parent_code = '86') "
                          "ORDER BY code LIMIT 1").fetchone()[0]  # type: ignore[index]
        elsewhere = f"PHC-ELSEWHERE-{uuid.uuid4().hex[:6]}"      # a house whose commune is no 2025 commune of 86
        c.execute("INSERT INTO packing_facilities (code, name, commune_code, status, geom) VALUES "
                  "(%s, 'Kho ngoài tỉnh', '99999', 'draft', ST_SetSRID(ST_MakePoint(106.3, 10.2), 4326))", [elsewhere])
    try:
        h = bearer(national_admin)
        producer, packer = uid("nong-dan"), uid("dong-goi")
        r = http.post("/admin/users", headers=h, json={"name": producer, "role": "producer", "areas": [area],
                                                       "display_name": "Hộ ông Ba"})
        assert r.status_code == 201, r.text
        assert r.json()["user"]["role"] == "producer" and r.json()["user"]["scope"]["areas"] == [area]
        # the key works: /auth/me says who, with the producer's scope (area codes)
        me = http.get("/auth/me", headers=bearer(r.json()["key"]))
        assert me.status_code == 200 and me.json()["role"] == "producer" and me.json()["scope"]["areas"] == [area]
        producer_key = r.json()["key"]
        r = http.post("/admin/users", headers=h, json={"name": packer, "role": "packer", "facilities": [house]})
        assert r.status_code == 201, r.text
        packer_key = r.json()["key"]
        me = http.get("/auth/me", headers=bearer(packer_key))
        assert me.status_code == 200 and me.json()["role"] == "packer" and me.json()["scope"]["facilities"] == [house]
        listed = {u["name"]: u for u in http.get("/admin/users", headers=h).json()["users"]}
        assert listed[producer]["role"] == "producer" and listed[producer]["scope"]["areas"] == [area]
        assert listed[packer]["role"] == "packer" and listed[packer]["scope"]["facilities"] == [house]
        assert listed[producer]["status"] == "active" and listed[producer]["active_keys"] == 1
        # bad input names the field; nothing created
        for body, fld in (({"name": uid("p"), "role": "producer"}, "areas"),
                          ({"name": uid("p"), "role": "producer", "areas": ["VN-NO-SUCH-AREA"]}, "areas"),
                          ({"name": uid("p"), "role": "producer", "facilities": [house]}, "areas"),
                          ({"name": uid("p"), "role": "packer", "facilities": ["PHC-NO-SUCH"]}, "facilities"),
                          ({"name": uid("p"), "role": "grower", "areas": [area]}, "role")):
            bad = problem(http.post("/admin/users?lang=en", headers=h, json=body), 422)
            assert bad["errors"][0]["field"] == fld, (body, bad)
            assert body["name"] not in {u["name"] for u in http.get("/admin/users", headers=h).json()["users"]}
        # a producer stays a producer (their scope is codes): a role change or a province scope is refused
        assert problem(http.patch(f"/admin/users/{producer}", headers=h, json={"role": "officer"}), 422)[
            "field"] == "role"
        assert problem(http.patch(f"/admin/users/{producer}", headers=h, json={"provinces": ["86"]}), 422)[
            "field"] == "provinces"
        # a producer's codes change as a whole (each checked), at once for their keys; staff take no codes
        r = http.patch(f"/admin/users/{producer}", headers=h, json={"areas": [area2]})
        assert r.status_code == 200, r.text
        assert r.json()["scope"]["areas"] == [area2]
        assert http.get("/auth/me", headers=bearer(producer_key)).json()["scope"]["areas"] == [area2]
        for body, fld in (({"areas": []}, "areas"), ({"areas": ["VN-NO-SUCH-AREA"]}, "areas"),
                          ({"facilities": [house]}, "areas")):
            bad = problem(http.patch(f"/admin/users/{producer}?lang=en", headers=h, json=body), 422)
            assert fld in (bad.get("field"), *(e["field"] for e in bad.get("errors", []))), (body, bad)
        assert http.get("/auth/me", headers=bearer(producer_key)).json()["scope"]["areas"] == [area2]
        staff = uid("staff")
        http.post("/admin/users", headers=h, json={"name": staff, "role": "officer", "provinces": ["86"]})
        assert problem(http.patch(f"/admin/users/{staff}?lang=en", headers=h, json={"areas": [area]}), 422)[
            "field"] == "areas"
        # a province admin (86): sees and creates producers/packers of 86 only
        scoped = bearer(create_user(sample_db, uid("padmin"), "admin", provinces=["86"]).key)
        outsider = uid("dong-goi-ngoai")
        http.post("/admin/users", headers=h, json={"name": outsider, "role": "packer", "facilities": [elsewhere]})
        seen = {u["name"] for u in http.get("/admin/users", headers=scoped).json()["users"]}
        assert {producer, packer} <= seen and outsider not in seen
        problem(http.get(f"/admin/users/{outsider}", headers=scoped), 404)
        denied = problem(http.post("/admin/users?lang=en", headers=scoped,
                                   json={"name": uid("x"), "role": "packer", "facilities": [elsewhere]}), 403)
        assert elsewhere in denied["detail"] and denied["field"] == "facilities"
        moved = problem(http.patch(f"/admin/users/{packer}?lang=en", headers=scoped, json={"facilities": [elsewhere]}),
                        403)       # nor move one of theirs there
        assert elsewhere in moved["detail"] and moved["field"] == "facilities"
        ok = http.post("/admin/users", headers=scoped, json={"name": uid("p86"), "role": "producer", "areas": [area]})
        assert ok.status_code == 201, ok.text
        # disable: every key of the packer stops at once
        d = http.patch(f"/admin/users/{packer}", headers=scoped, json={"disabled": True})
        assert d.status_code == 200 and d.json()["status"] == "disabled" and d.json()["active_keys"] == 0
        problem(http.get("/auth/me", headers=bearer(packer_key)), 401)         # was 200: a known key of a packer
    finally:
        with psycopg.connect(sample_db) as c:
            c.execute("DELETE FROM packing_facilities WHERE code = %s", [elsewhere])


# -- migration of existing keys --------------------------------------------------------------------------------

@pytest.fixture()
def scratch(settings: Settings) -> Iterator[Settings]:
    name = settings.db_name + "_acc_scratch"
    s = settings.model_copy(update={"db_name": name})
    if s.database_url:
        s = s.model_copy(update={"database_url": s.dsn(name)})
    pgcluster.drop_database(s, name)
    pgcluster.ensure_database(s, name)
    yield s
    pgcluster.drop_database(s, name)


def test_existing_keys_get_users(scratch: Settings) -> None:
    dbmod.migrate(scratch, revision="0005")
    dsn = scratch.dsn()
    with psycopg.connect(dsn) as c:
        c.execute("INSERT INTO admin_units (code, scheme, level, name, valid_from) VALUES "
                  "('86', '2025', 'province', 'Vĩnh Long', '2025-07-01'), "
                  "('83', '2004', 'province', 'Bến Tre', '2004-01-01')")
        c.execute("INSERT INTO api_keys (name, role, key_hash) VALUES ('old-officer', 'officer', %s), "
                  "('old-admin', 'admin', %s)", [hash_secret("a"), hash_secret("b")])
    dbmod.migrate(scratch)
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT k.name, u.name, u.role, u.national, u.provinces FROM api_keys k "
                         "JOIN users u ON u.id = k.user_id ORDER BY k.name").fetchall()
    assert rows == [("old-admin", "old-admin", "admin", True, []),
                    ("old-officer", "old-officer", "officer", False, ["86"])]
    dbmod.downgrade(scratch, revision="0005")
    dbmod.migrate(scratch)


def test_sample_load_makes_demo_users_with_random_secrets(settings: Settings, sample_db: str,
                                                          http: httpx.Client) -> None:
    import re

    with psycopg.connect(sample_db) as c:
        c.execute("DELETE FROM users WHERE name IN ('demo-admin', 'demo-officer')")
    r = datso(settings, "sample", "load")       # the data is there: nothing loaded, the demo users made
    assert r.returncode == 0, r.stderr
    text = r.stderr.replace("\n", " ")
    found = dict(re.findall(r"(demo-\w+) \([^)]*\): password (\S+),", text))
    keys = dict(re.findall(r"(demo-\w+) \([^)]*\): password \S+, API key (datso_\S+)", text))
    assert set(found) == set(keys) == {"demo-admin", "demo-officer"}
    assert http.get("/auth/me", headers=bearer(keys["demo-officer"])).json()["scope"]["provinces"] == ["86"]
    assert http.get("/auth/me", headers=bearer(keys["demo-admin"])).json()["scope"]["national"] is True
    assert http.post("/auth/login", json={"name": "demo-officer", "password": found["demo-officer"]}).status_code == 200
    again = datso(settings, "sample", "load")   # a second run keeps them (and shows no secret)
    assert again.returncode == 0 and "already there" in again.stderr and "datso_" not in again.stderr
    assert found["demo-officer"] not in (ROOT / "cli" / "sample.py").read_text()
