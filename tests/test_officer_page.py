"""The officer page (/officer) in headless Chromium against a live server and the real PostGIS: a wrong password
shows the API's error, an officer signs in (name and scope shown), uploads a boundary file that overlaps an
active area (409: the page names its code and paints it red on the map), uploads one that is clear (a draft),
grants its code under If-Match, suspends it with a reason (refused without one), reads the history, adds an
inspection record, draws a boundary by clicking the map; every request outside the server is aborted (the page
works offline); screenshots at 1280x800 and 360x740 in Vietnamese and English under test-artifacts/."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import LiveServer, free_port, rows_removed_after
from map_browser_util import PageLog, chromium, screenshot

from layers.accounts.users import create_user

pytestmark = pytest.mark.browser

PASSWORD = "mat-khau-vung-trong-2026"
OWNER = "HTX Thử nghiệm Trang cán bộ"


@pytest.fixture(scope="module", autouse=True)
def _leave_the_sample_as_found(sample_db: str) -> Iterator[None]:
    """The areas and packing houses registered here are removed afterwards (other modules count the sample)."""
    with rows_removed_after(sample_db):
        yield


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def live_server(sample_db: str, settings: Any) -> Iterator[LiveServer]:
    from api.app import create_app

    with LiveServer(create_app(settings=settings, dsn=sample_db), free_port()) as srv:
        yield srv


def _user(dsn: str, name: str) -> str:
    """An officer of province 86 with a password (one per test: sign-ins are rate-limited per name and address)."""
    with psycopg.connect(dsn) as c:
        if c.execute("SELECT 1 FROM users WHERE name = %s", [name]).fetchone() is None:
            create_user(dsn, name, "officer", ["86"], [], False, "Trần Thị Mai", PASSWORD)
    return name


@pytest.fixture()
def officer(sample_db: str, request: Any) -> str:
    return _user(sample_db, "canbo_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[5:40])


def open_page(browser: Any, server: LiveServer, width: int = 1280, height: int = 800,
              lang: str = "vi") -> tuple[Any, Any, PageLog, list[str]]:
    """A fresh context where every request that leaves the server is aborted (and recorded)."""
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN")
    aborted: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith((server.url, "blob:", "data:")):
            route.continue_()
        else:
            aborted.append(url)
            route.abort()

    ctx.route("**/*", guard)
    page = ctx.new_page()
    log = PageLog(page)
    page.goto(server.url + "/officer" + ("?lang=en" if lang == "en" else ""))
    page.wait_for_selector("#login-form:visible", timeout=20000)
    return ctx, page, log, aborted


def sign_in(page: Any, name: str, password: str = PASSWORD) -> None:
    page.fill("#login-name", name)
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_selector("#app-view:visible", timeout=20000)
    page.wait_for_selector(".item", timeout=20000)
    page.wait_for_function("() => document.querySelectorAll('#counts .chip').length > 1", timeout=20000)


def map_idle(page: Any) -> None:
    page.wait_for_function("() => !window.__officer || (window.__officer.map.loaded() && "
                           "!window.__officer.map.isMoving())", timeout=30000)
    page.wait_for_timeout(400)


def shot(page: Any, name: str) -> Path:
    map_idle(page)
    return screenshot(page, name)


def _active_area(dsn: str) -> tuple[int, str, dict[str, Any]]:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT id, code, ST_AsGeoJSON(geom, 7) FROM growing_areas WHERE status = 'active' "
                        "AND area_m2 > 20000 ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), json.loads(row[2])


def _clear_square(dsn: str, size_m: float = 160.0, skip: int = 0) -> dict[str, Any]:
    """A square of `size_m` inside a commune of province 86, touching no growing area."""
    with psycopg.connect(dsn) as c:
        rows = c.execute("""
            WITH p AS (SELECT code, ST_PointOnSurface(geom) AS pt FROM admin_units
                       WHERE level = 'commune' AND scheme = '2025' AND parent_code = '86' ORDER BY code),
                 sq AS (SELECT code, ST_Transform(ST_Expand(ST_Transform(pt, 3405), %s), 4326) AS g FROM p)
            SELECT ST_AsGeoJSON(sq.g, 7) FROM sq
            JOIN admin_units a ON a.code = sq.code AND a.scheme = '2025' AND ST_Covers(a.geom, sq.g)
            WHERE NOT EXISTS (SELECT 1 FROM growing_areas ga WHERE ST_DWithin(ga.geom, sq.g, 0.001))
            ORDER BY sq.code""", [size_m / 2]).fetchall()
    assert len(rows) > skip
    return json.loads(rows[skip][0])


def _write_geojson(path: Path, geometry: dict[str, Any], owner: str, crop: str = "durian") -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": geometry, "properties": {"crop": crop, "owner": owner, "variety": "Ri6"}}]}),
        encoding="utf-8")
    return path


def _shifted(geom: dict[str, Any], dx: float, dy: float) -> dict[str, Any]:
    def move(c: Any) -> Any:
        return [c[0] + dx, c[1] + dy] if isinstance(c[0], float | int) else [move(x) for x in c]
    return {"type": geom["type"], "coordinates": move(geom["coordinates"])}


def test_page_config_comes_from_the_registry(client: Any) -> None:
    from layers.catalog.registry import LAYERS

    r = client.get("/officer?lang=en")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    config = json.loads(re.search(r'<script id="datso-config" type="application/json">(.*?)</script>', r.text,
                                  re.S).group(1))          # type: ignore[union-attr]
    assert config["lang"] == "en"
    registered = [lid for lid, layer in LAYERS.items() if layer.registration is not None]
    assert [lyr["id"] for lyr in config["layers"]] == registered
    for lyr in config["layers"]:
        lc = LAYERS[lyr["id"]].lifecycle
        assert lc is not None
        assert lyr["status"]["transitions"] == {k: list(v) for k, v in (lc.transitions or {}).items()}
        assert lyr["status"]["reasonStates"] == list(lc.reason_states)
        assert lyr["codeField"] not in lyr["form"] and "status" not in lyr["form"]
    areas = config["layers"][0]
    assert {r["id"] for r in areas["records"]} == {"seasons", "inspections", "pest_observations"}
    assert all(c["province"] for c in config["communes"])
    assert client.get("/officer").text.count("Đăng nhập") >= 1


def test_wrong_password_shows_the_error(browser: Any, live_server: LiveServer, officer: str) -> None:
    ctx, page, log, aborted = open_page(browser, live_server)
    try:
        page.fill("#login-name", officer)
        page.fill("#login-password", "sai-mat-khau")
        page.click("#login-submit")
        page.wait_for_selector("#login-error:visible", timeout=15000)
        assert "mật khẩu không đúng" in page.inner_text("#login-error")
        assert page.is_hidden("#app-view")
        page.click("#lang-switch")
        page.fill("#login-password", "still-wrong")
        page.click("#login-submit")
        page.wait_for_function("() => /wrong user name or password/i.test("
                               "document.getElementById('login-error').textContent)", timeout=15000)
        assert page.inner_text("#login-submit") == "Sign in"
        shot(page, "officer-login-error-en-1280.png")
        assert log.console_errors() == [] or all("401" in e for e in log.console_errors())
        assert aborted == []
    finally:
        ctx.close()


def test_upload_conflict_register_grant_suspend(browser: Any, live_server: LiveServer, officer: str,
                                                sample_db: str, tmp_path: Path) -> None:
    area_id, area_code, area_geom = _active_area(sample_db)
    overlapping = _write_geojson(tmp_path / "chong_lan.geojson", _shifted(area_geom, 0.0004, 0.0002), OWNER)
    clear = _write_geojson(tmp_path / "vung_moi.geojson", _clear_square(sample_db), OWNER)
    ctx, page, log, aborted = open_page(browser, live_server)
    try:
        sign_in(page, officer)
        assert page.inner_text("#who-name") == "Trần Thị Mai"
        assert "Tỉnh 86" in page.inner_text("#who-scope")
        counts = page.inner_text("#counts")
        assert "Còn hiệu lực" in counts and "Nháp" in counts
        shot(page, "officer-list-vi-1280.png")

        # an upload overlapping an active area: refused, the area named and painted red
        page.click("#new-item")
        page.click("[data-mode=upload]")
        page.set_input_files("#upload-file", str(overlapping))
        page.wait_for_selector("#upload-info:has-text('1')", timeout=10000)
        page.click("#upload-submit")
        page.wait_for_selector("#reg-result .error", timeout=20000)
        assert area_code in page.inner_text("#reg-result .error")
        page.wait_for_selector("#conflict-list", timeout=15000)
        assert area_code in page.inner_text("#conflict-list")
        painted = page.evaluate("() => window.__officer.state.conflicts.map(f => f.id)")
        assert area_id in painted
        rendered = page.evaluate("""() => { const m = window.__officer.map;
            return m.querySourceFeatures('conflicts').map(f => f.properties.id); }""")
        assert area_id in rendered
        shot(page, "officer-conflict-vi-1280.png")
        with psycopg.connect(sample_db) as c:
            assert c.execute("SELECT count(*) FROM growing_areas WHERE owner = %s", [OWNER]).fetchone()[0] == 0

        # a boundary clear of every area: a draft
        page.set_input_files("#upload-file", str(clear))
        page.click("#upload-submit")
        page.wait_for_selector("#reg-result .success", timeout=20000)
        assert "1" in page.inner_text("#reg-result .success")
        with psycopg.connect(sample_db) as c:
            row = c.execute("SELECT id, status, code FROM growing_areas WHERE owner = %s", [OWNER]).fetchone()
        assert row is not None and row[1] == "draft" and row[2] is None
        new_id = int(row[0])

        # the list shows the drafts; open the new one and grant its code
        page.click("#view-register .back")
        page.wait_for_selector(f".item[data-id='{new_id}']", timeout=15000)
        page.click(f".item[data-id='{new_id}']")
        page.wait_for_selector("#detail-code", timeout=15000)
        assert page.inner_text("#detail-code") == "Chưa có mã (nháp)"
        page.click("[data-action=active]")
        page.fill("#act-decision-no", "125/QĐ-CCTTBVTV")
        page.click("#act-confirm")
        page.wait_for_function("() => /^VN-86-/.test(document.getElementById('detail-code').textContent)",
                               timeout=15000)
        code = page.inner_text("#detail-code")
        with psycopg.connect(sample_db) as c:
            row = c.execute("SELECT status, code, decision_no FROM growing_areas WHERE id = %s", [new_id]).fetchone()
        assert row == ("active", code, "125/QĐ-CCTTBVTV")
        assert code in page.inner_text("#toast")
        shot(page, "officer-granted-vi-1280.png")

        # suspend: a reason is required (the page says so), then recorded
        page.click("[data-action=suspended]")
        page.click("#act-confirm")
        assert "Cần nhập lý do" in page.inner_text(".action-form .error")
        page.fill("#act-reason", "Phát hiện dư lượng thuốc BVTV vượt mức cho phép")
        page.click("#act-confirm")
        page.wait_for_selector("#detail .badge:has-text('Tạm đình chỉ')", timeout=15000)
        with psycopg.connect(sample_db) as c:
            row = c.execute("SELECT status, status_reason FROM growing_areas WHERE id = %s", [new_id]).fetchone()
        assert row == ("suspended", "Phát hiện dư lượng thuốc BVTV vượt mức cho phép")

        # history: who, the reason, the code granted
        page.wait_for_selector(".history li", timeout=15000)
        page.click("[data-subtab=history]")
        page.wait_for_selector(".history li:has-text('Phát hiện dư lượng')", timeout=15000)
        hist = page.inner_text(".history")
        assert officer in hist and code in hist
        shot(page, "officer-history-vi-1280.png")

        # an inspection record of the area
        page.click("[data-subtab=inspections]")
        page.click("[data-add=inspections]")
        page.fill("#rec-inspections-inspection_date", "2026-11-20")
        page.fill("#rec-inspections-inspector", "Lê Văn Kiểm")
        page.select_option("#rec-inspections-result", "conditional")
        page.click("[data-record-form=inspections] button[type=submit]")
        page.wait_for_selector("table.records td:has-text('Đạt có điều kiện')", timeout=15000)
        assert "20/11/2026" in page.inner_text("table.records")
        with psycopg.connect(sample_db) as c:
            assert c.execute("SELECT inspector FROM inspections WHERE growing_area_id = %s",
                             [new_id]).fetchone() == ("Lê Văn Kiểm",)
        shot(page, "officer-records-vi-1280.png")

        assert aborted == [], aborted
        assert log.external(live_server.url) == []
        assert [e for e in log.console_errors() if "409" not in e and "400" not in e] == []
    finally:
        ctx.close()


def test_draw_a_boundary_and_register(browser: Any, live_server: LiveServer, officer: str, sample_db: str) -> None:
    square = _clear_square(sample_db, 200.0, skip=1)
    ring = square["coordinates"][0][:4]
    ctx, page, log, aborted = open_page(browser, live_server, lang="en")
    try:
        sign_in(page, officer)
        page.click("#new-item")
        page.wait_for_selector("#draw-start")
        page.evaluate("""(ring) => { const m = window.__officer.map;
            const xs = ring.map(p => p[0]), ys = ring.map(p => p[1]);
            m.fitBounds([[Math.min(...xs), Math.min(...ys)], [Math.max(...xs), Math.max(...ys)]],
                        {padding: 120, duration: 0}); }""", ring)
        map_idle(page)
        page.click("#draw-start")
        box = page.locator("#map canvas").bounding_box()
        for lon, lat in ring:
            pt = page.evaluate("([lon, lat]) => window.__officer.map.project([lon, lat])", [lon, lat])
            page.mouse.click(box["x"] + pt["x"], box["y"] + pt["y"])
            page.wait_for_timeout(120)
        page.click("#draw-done")
        status = page.inner_text("#geom-status")
        assert "4 vertices" in status and " ha)" in status
        page.select_option("#reg-crop", "pomelo")
        page.click("#reg-submit")          # no owner: the API's 422 lands on the field, in English
        page.wait_for_selector(".field[data-field=owner].invalid .field-error", timeout=15000)
        assert page.inner_text("#reg-result .error")
        page.fill("#reg-owner", "Drawn Cooperative")
        page.fill("#reg-expected_yield_t", "1,250.5")
        assert "Minimum for" in page.inner_text("#geom-status")
        shot(page, "officer-draw-en-1280.png")
        page.click("#reg-submit")
        page.wait_for_selector("#detail-code", timeout=20000)
        assert page.inner_text("#detail-code") == "No code yet (draft)"
        with psycopg.connect(sample_db) as c:
            row = c.execute("SELECT status, crop, expected_yield_t, commune_code FROM growing_areas "
                            "WHERE owner = 'Drawn Cooperative'").fetchone()
        assert row is not None and row[0] == "draft" and row[1] == "pomelo" and float(row[2]) == 1250.5
        assert row[3]          # derived from the location
        assert re.search(r"1,250\.5", page.inner_text("#detail"))

        # the boundary is moved (over HTTP, as the officer): the history draws the old one on the map
        fid = page.evaluate("() => window.__officer.state.selected.id")
        moved = _shifted(square, 0.0003, 0.0)
        status = page.evaluate("""async ([fid, geom]) => {
            const s = window.__officer.state;
            const r = await fetch('/collections/growing_areas/items/' + fid, {method: 'PATCH', headers: {
                'Authorization': 'Bearer ' + s.token, 'If-Match': s.etag,
                'Content-Type': 'application/merge-patch+json'}, body: JSON.stringify({geometry: geom})});
            return r.status; }""", [fid, moved])
        assert status in (200, 204)
        page.click("#view-detail .back")
        page.click(f".item[data-id='{fid}']")
        page.wait_for_selector("[data-before]", timeout=15000)
        page.click("[data-before]")
        n = page.evaluate("() => window.__officer.map.getSource('before')._data.features.length")
        assert n == 1
        assert page.inner_text("[data-before]") == "Hide old boundary"
        shot(page, "officer-history-old-boundary-en-1280.png")
        assert aborted == [] and log.external(live_server.url) == []
    finally:
        ctx.close()


@pytest.mark.parametrize(("lang", "width", "height"), [("vi", 360, 740), ("en", 360, 740), ("vi", 820, 1180)])
def test_phone_and_tablet(browser: Any, live_server: LiveServer, officer: str, sample_db: str, lang: str,
                          width: int, height: int) -> None:
    ctx, page, log, aborted = open_page(browser, live_server, width, height, lang)
    try:
        shot(page, f"officer-login-{lang}-{width}.png")
        sign_in(page, officer)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        shot(page, f"officer-list-{lang}-{width}.png")
        page.click(".item >> nth=0")
        page.wait_for_selector("#detail-code", timeout=15000)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        shot(page, f"officer-detail-{lang}-{width}.png")
        page.locator("#detail .actions").first.scroll_into_view_if_needed()
        screenshot(page, f"officer-detail-actions-{lang}-{width}.png")
        # the packing houses: the same list, counts and lifecycle
        page.click("[data-layer=packing_facilities]")
        page.wait_for_function("() => document.querySelector('.item .meta') && "
                               "!/Sầu riêng|Durian/.test(document.getElementById('items').textContent)", timeout=15000)
        assert page.is_hidden("#f-crop-box")
        shot(page, f"officer-packing-{lang}-{width}.png")
        if width > 360:      # a packing house is registered by picking its location on the map
            ring = _clear_square(sample_db, 100.0, skip=2)["coordinates"][0]
            lon, lat = sum(p[0] for p in ring[:4]) / 4, sum(p[1] for p in ring[:4]) / 4
            page.click("#new-item")
            page.click("#draw-start")
            page.evaluate("([lon, lat]) => window.__officer.map.jumpTo({center: [lon, lat], zoom: 16})", [lon, lat])
            map_idle(page)
            box = page.locator("#map canvas").bounding_box()
            pt = page.evaluate("([lon, lat]) => window.__officer.map.project([lon, lat])", [lon, lat])
            page.mouse.click(box["x"] + pt["x"], box["y"] + pt["y"])
            page.fill("#reg-name", "Cơ sở đóng gói Thử nghiệm")
            page.click("[name=markets][value=CN]")
            page.click("#reg-submit")
            page.wait_for_selector("#detail-code", timeout=20000)
            with psycopg.connect(sample_db) as c:
                row = c.execute("SELECT status, markets, commune_code FROM packing_facilities "
                                "WHERE name = 'Cơ sở đóng gói Thử nghiệm'").fetchone()
            assert row is not None and row[0] == "draft" and row[1] == ["CN"] and row[2]
            # the growing areas it sources from: written by code, read back, audited
            area_id, area_code, _ = _active_area(sample_db)
            page.click("[data-subtab='rel:sources']")
            page.fill("#relation-codes", area_code)
            page.click("#relation-save")
            page.wait_for_selector(f"#relation-list li:has-text('{area_code}')", timeout=15000)
            with psycopg.connect(sample_db) as c:
                links = c.execute("SELECT l.growing_area_id FROM packing_facility_growing_areas l "
                                  "JOIN packing_facilities f ON f.id = l.facility_id "
                                  "WHERE f.name = 'Cơ sở đóng gói Thử nghiệm'").fetchall()
            assert links == [(area_id,)]
            shot(page, f"officer-packing-registered-{lang}-{width}.png")
        if lang == "en":
            assert "Sign out" in page.inner_text("#sign-out")
        else:
            assert "Đăng xuất" in page.inner_text("#sign-out")
        page.click("#sign-out")
        page.wait_for_selector("#login-form:visible", timeout=15000)
        assert page.evaluate("() => sessionStorage.getItem('datso-token')") is None
        assert aborted == [] and log.console_errors() == []
    finally:
        ctx.close()


@pytest.mark.parametrize("width", [1280, 360])
def test_admin_manages_producers_and_packers_on_the_page(browser: Any, live_server: LiveServer, sample_db: str,
                                                        width: int) -> None:
    """An admin's "Người dùng" tab: every user with role and scope (producers/packers by their codes), a producer
    created as `datso users create NAME --role producer --area CODE` does (the key shown once, and it is a key of
    that user), then disabled (two clicks); an officer has no such tab."""
    import uuid

    admin = f"quantri_{width}_{uuid.uuid4().hex[:6]}"
    create_user(sample_db, admin, "admin", ["86"], [], False, "Lê Văn Quản", PASSWORD)
    with psycopg.connect(sample_db) as c:
        area = c.execute("SELECT g.code FROM growing_areas g JOIN admin_units a ON a.code = g.commune_code AND "
                         "a.level = 'commune' AND a.scheme = '2025' AND a.parent_code = '86' "
                         "WHERE g.code IS NOT NULL ORDER BY g.code LIMIT 1").fetchone()[0]  # type: ignore[index]
    producer = f"nongdan_{width}_{uuid.uuid4().hex[:6]}"
    ctx, page, log, aborted = open_page(browser, live_server, width=width, height=900)
    try:
        sign_in(page, admin)
        page.click("[data-view=users]")
        page.wait_for_selector("#users-list table", timeout=20000)
        # a producer: the province fields give way to the area codes
        page.select_option("#u-role", "producer")
        assert page.is_hidden("#u-provinces") and page.is_visible("#u-areas")
        page.fill("#u-name", producer)
        page.fill("#u-display", "Hộ ông Năm")
        page.fill("#u-areas", "VN-KHONG-CO")                # an unknown code: the problem names it
        page.click("#u-create")
        page.wait_for_selector("#user-msg .error", timeout=15000)
        assert "VN-KHONG-CO" in page.inner_text("#user-msg")
        page.fill("#u-areas", area)
        page.click("#u-create")
        page.wait_for_selector("#new-key", timeout=15000)
        key = page.inner_text("#new-key").strip()
        assert producer in page.inner_text("#user-msg") and "chỉ hiện một lần" in page.inner_text("#user-msg")
        row = f"tr[data-user='{producer}']"
        page.wait_for_selector(row, timeout=15000)
        text = page.inner_text(row)
        assert "Nhà sản xuất" in text and area in text and "Đang hoạt động" in text and "Hộ ông Năm" in text
        shot(page, f"officer-users-created-vi-{width}.png")
        with psycopg.connect(sample_db) as c:
            got = c.execute("SELECT u.role, u.areas FROM users u WHERE u.name = %s", [producer]).fetchone()
            assert got == ("producer", [area])
            assert c.execute("SELECT count(*) FROM api_keys k JOIN users u ON u.id = k.user_id WHERE u.name = %s "
                             "AND k.key_hash IS NOT NULL AND k.revoked_at IS NULL", [producer]).fetchone() == (1,)
        from layers.accounts.users import hash_secret
        with psycopg.connect(sample_db) as c:
            owner = c.execute("SELECT u.name FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = %s",
                              [hash_secret(key)]).fetchone()
        assert owner == (producer,)                  # the key shown is that user's
        # disable: the first click asks again, the second disables every key
        button = f"{row} [data-disable]"
        page.click(button)
        assert "Bấm lần nữa" in page.inner_text(button)
        page.click(button)
        page.wait_for_function(f"() => /Đã vô hiệu hóa/.test(document.querySelector(\"{row}\")?.textContent || '')",
                               timeout=15000)
        with psycopg.connect(sample_db) as c:
            assert c.execute("SELECT disabled_at IS NOT NULL FROM users WHERE name = %s", [producer]).fetchone() == (True,)
        page.click("#lang-switch")                   # English: the same view, relabelled
        page.wait_for_selector("#users-list table", timeout=20000)
        page.wait_for_function(f"() => /Producer/.test(document.querySelector(\"{row}\")?.textContent || '')",
                               timeout=15000)
        assert "Disabled" in page.inner_text(row) and page.inner_text("[data-view=users]") == "Users"
        shot(page, f"officer-users-disabled-en-{width}.png")
        assert all("422" in e for e in log.console_errors()) and aborted == []       # the unknown code's 422
    finally:
        ctx.close()
    # an officer sees no users tab
    officer = _user(sample_db, f"canbo_nousers_{width}")
    ctx, page, log, aborted = open_page(browser, live_server, width=width)
    try:
        sign_in(page, officer)
        assert page.query_selector("[data-view=users]") is None
    finally:
        ctx.close()
