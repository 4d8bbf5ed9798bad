"""Browser and HTTP defaults (api/security.py), over real HTTP against the sample province: CORS off by default
and an allow-list when configured (writes only when enabled, never with `*`, never credentials); security
headers on every response (HTML pages without inline script, Folium exports sandboxed, Swagger UI with its
own hash-pinned policy, cached tiles included); absolute links only from DATSO_PUBLIC_URL or a trusted Host
(a spoofed Host is a 400 problem+json); slowapi rate limits on wrong API keys and public lookups (429
problem+json with Retry-After, nothing written; the right key waits too from that address, since the limit is
checked before the key lookup)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import psycopg
import pytest
from conftest import table_fingerprint
from fastapi.testclient import TestClient
from pydantic import ValidationError
from tiles_support import tile_of

from layers.accounts.auth import create_key
from layers.settings import ApiSettings

GEO = "application/geo+json"
FOREIGN = "https://evil.example"
PORTAL = "https://portal.tinh.gov.vn"
PUBLIC = "https://datso.tinh.gov.vn"
HTML = {"Accept": "text/html"}


def make_client(settings: Any, dsn: str, **api: Any) -> TestClient:
    from api.app import create_app

    return TestClient(create_app(settings=settings, api_settings=ApiSettings(**api), dsn=dsn))


@pytest.fixture(scope="module")
def officer(sample_db: str) -> str:
    return create_key(sample_db, f"officer-{uuid.uuid4().hex[:8]}", "officer")


def preflight(client: TestClient, origin: str, method: str, headers: str = "authorization,content-type",
              path: str = "/collections/auction_plots/items/1") -> Any:
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                         "Access-Control-Request-Headers": headers})


# -- CORS ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["DELETE", "PATCH", "PUT", "POST", "GET"])
def test_cors_off_by_default_foreign_preflight_refused(client: TestClient, method: str) -> None:
    r = preflight(client, FOREIGN, method)
    assert r.status_code >= 400
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-methods" not in r.headers and "access-control-allow-credentials" not in r.headers
    # a plain cross-origin read gets the data but no permission for the foreign page to read it
    r = client.get("/collections/auction_plots/items?limit=1", headers={"Origin": FOREIGN})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_default_tile_fast_path_gives_no_cors(client: TestClient, sample_db: str) -> None:
    url = plot_tile(sample_db)
    for _ in range(2):   # a miss, then the cached tile
        r = client.get(url, headers={"Origin": FOREIGN})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_allow_list_reads_only(settings: Any, sample_db: str) -> None:
    with make_client(settings, sample_db, cors_origins=[PORTAL]) as c:
        r = preflight(c, PORTAL, "GET", headers="accept-language")
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == PORTAL
        assert "access-control-allow-credentials" not in r.headers
        for method in ("DELETE", "PATCH", "PUT", "POST"):
            r = preflight(c, PORTAL, method)
            assert r.status_code == 400, method
            assert method not in r.headers.get("access-control-allow-methods", "")
        r = preflight(c, PORTAL, "GET", headers="authorization")   # no keys cross-origin for reads either
        assert r.status_code == 400
        r = preflight(c, FOREIGN, "GET", headers="accept-language")
        assert r.status_code == 400 and r.headers.get("access-control-allow-origin") != FOREIGN
        r = c.get("/collections/auction_plots/items?limit=1", headers={"Origin": PORTAL})
        assert r.headers["access-control-allow-origin"] == PORTAL and "ETag" in r.headers["access-control-expose-headers"]
        r = c.get("/collections/auction_plots/items?limit=1", headers={"Origin": FOREIGN})
        assert "access-control-allow-origin" not in r.headers


def test_cors_writes_only_when_enabled_for_named_origins(settings: Any, sample_db: str) -> None:
    with make_client(settings, sample_db, cors_origins=[PORTAL], cors_allow_writes=True) as c:
        r = preflight(c, PORTAL, "DELETE", headers="authorization,if-match")
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == PORTAL
        assert "DELETE" in r.headers["access-control-allow-methods"]
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in r.headers
        r = preflight(c, FOREIGN, "DELETE")
        assert r.status_code == 400 and r.headers.get("access-control-allow-origin") != FOREIGN
    with pytest.raises(ValidationError, match="named origins"):
        ApiSettings(cors_origins=["*"], cors_allow_writes=True)


def test_cors_star_is_reads_without_credentials(settings: Any, sample_db: str) -> None:
    with make_client(settings, sample_db, cors_origins=["*"]) as c:
        r = preflight(c, FOREIGN, "GET", headers="accept")
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
        assert preflight(c, FOREIGN, "DELETE").status_code == 400


def test_list_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATSO_CORS_ORIGINS", f"{PORTAL}, https://b.vn")
    monkeypatch.setenv("DATSO_TRUSTED_HOSTS", '["datso.tinh.gov.vn", "*.tinh.gov.vn"]')
    a = ApiSettings()
    assert a.cors_origins == [PORTAL, "https://b.vn"] and a.trusted_hosts == ["datso.tinh.gov.vn", "*.tinh.gov.vn"]


# -- security headers ---------------------------------------------------------------------------------------

class Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_handlers: list[str] = []
        self.styles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        if tag == "style" or "style" in a:
            self.styles += 1
        self.inline_handlers += [k for k in a if k.startswith("on")]


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


PLOT = "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) c FROM auction_plots ORDER BY id LIMIT 1) s"


def plot_tile(sample_db: str, z: int = 14) -> str:
    t = tile_of(sample_db, PLOT, z)
    return f"/tiles/{z}/{t.x}/{t.y}.mvt"


def common_headers(r: Any, live: bool = False) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    if not live:   # the app adds no banner (uvicorn's own `server:` is switched off in api/server.py)
        assert "server" not in r.headers


PAGES = ["/?f=html", "/map", "/collections?f=html", "/collections/auction_plots?f=html",
         "/collections/auction_plots/items?f=html&limit=5", "/collections/parcels/items?f=html&limit=3",
         "/collections/auction_plots/items/1?f=html", "/map?status=bogus"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_have_a_strict_csp_and_no_inline_script(client: TestClient, path: str) -> None:
    r = client.get(path, headers=HTML)
    assert r.status_code in (200, 400) and r.headers["content-type"].startswith("text/html")
    common_headers(r)
    d = directives(r.headers["content-security-policy"])
    assert d["script-src"] == ["'self'"] and d["style-src"] == ["'self'"] and d["object-src"] == ["'none'"]
    assert "blob:" in d["worker-src"] and "blob:" in d["img-src"] and d["base-uri"] == ["'none'"]
    parser = Scripts()
    parser.feed(r.text)
    # every script is a file we serve, or data (type=application/json is never executed)
    for s in parser.scripts:
        assert s.get("src") or s.get("type") == "application/json", s
    assert parser.inline_handlers == [] and parser.styles == 0
    for s in parser.scripts:
        if s.get("src"):
            src = str(s["src"]).replace("http://testserver", "")
            assert src.startswith("/static/")
            js = client.get(src)
            assert js.status_code == 200 and "javascript" in js.headers["content-type"]
            common_headers(js)


@pytest.mark.parametrize("path", ["/collections", "/collections/auction_plots/items?limit=2", "/conformance",
                                  "/api", "/search?q=DG", "/health", "/static/map/map.css", "/nope",
                                  "/collections/auction_plots/items/999999999"])
def test_api_responses_get_a_deny_all_policy(client: TestClient, path: str) -> None:
    r = client.get(path)
    common_headers(r)
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_cached_tiles_of_the_fast_path_get_the_headers(client: TestClient, sample_db: str) -> None:
    url = plot_tile(sample_db, 15) + "?layers=auction_plots,parcels"
    states = []
    for _ in range(3):
        r = client.get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        states.append(r.headers["x-cache"])
        common_headers(r)
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "HIT" in states    # answered by TileFastPath, before every other middleware


def test_folium_exports_run_sandboxed(client: TestClient) -> None:
    r = client.get("/maps/auction_plots.html?status=sold", headers=HTML)
    assert r.status_code == 200 and "<script" in r.text     # Folium: inline scripts, allowed only sandboxed
    common_headers(r)
    d = directives(r.headers["content-security-policy"])
    assert d["sandbox"] == ["allow-scripts", "allow-popups", "allow-popups-to-escape-sandbox", "allow-downloads"]
    assert "allow-same-origin" not in r.headers["content-security-policy"]
    # its error pages too (the same path)
    r = client.get("/maps/auction_plots.html?status=bogus", headers=HTML)
    assert r.status_code == 400 and "sandbox" in r.headers["content-security-policy"]


def test_swagger_ui_has_its_own_hash_pinned_policy(client: TestClient) -> None:
    r = client.get("/api.html")
    assert r.status_code == 200 and "SwaggerUIBundle" in r.text
    common_headers(r)
    d = directives(r.headers["content-security-policy"])
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in d["script-src"] and "'unsafe-inline'" not in d["script-src"]
    assert d["default-src"] == ["'none'"] and d["connect-src"] == ["'self'"]
    assert "/api.html" not in client.get("/api").json()["paths"]


# -- trusted hosts and the public base URL -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/collections", "/", "/map", "/collections/auction_plots/items?limit=1",
                                  "/tiles/14/13000/7600.mvt", "/tiles/tilejson.json", "/imagery",
                                  "/maps/auction_plots.html", "/search?q=DG"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.",
                                  "[::2]:80"])
def test_spoofed_host_is_a_problem_400(client: TestClient, path: str, host: str) -> None:
    r = client.get(path, headers={"Host": host})
    assert r.status_code == 400, (path, host)
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert "DATSO_TRUSTED_HOSTS" in body["detail"] and body["status"] == 400
    common_headers(r)
    assert "evil" not in r.headers.get("location", "")


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8103", "[::1]:8000", "testserver", "LOCALHOST"])
def test_trusted_hosts_link_to_themselves(client: TestClient, host: str) -> None:
    r = client.get("/collections", headers={"Host": host})
    assert r.status_code == 200
    hrefs = [link["href"] for link in r.json()["links"]]
    assert hrefs and all(h.startswith(f"http://{host}/") for h in hrefs)


def test_default_trusted_hosts_are_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.security import HostPolicy, trusted_hosts

    monkeypatch.delenv("DATSO_TRUSTED_HOSTS", raising=False)
    a = ApiSettings(_env_file=None)  # type: ignore[call-arg]
    hosts = trusted_hosts(a)
    assert sorted(hosts) == ["127.0.0.1", "::1", "localhost"]
    p = HostPolicy(hosts)
    assert p.allows("127.0.0.1:8000") and p.allows("localhost") and p.allows("[::1]:8000")
    assert not p.allows("testserver") and not p.allows("evil.example") and not p.allows("localhost.evil")
    with_public = trusted_hosts(ApiSettings(_env_file=None, public_url=PUBLIC))  # type: ignore[call-arg]
    assert sorted(with_public) == ["127.0.0.1", "::1", "datso.tinh.gov.vn", "localhost"]
    w = HostPolicy(["*.tinh.gov.vn"])
    assert w.allows("datso.tinh.gov.vn:443") and not w.allows("tinh.gov.vn.evil.example")


def test_public_url_trusts_its_host_and_loopback(settings: Any, sample_db: str) -> None:
    """Behind a proxy: its public host and the loopback upstream Host are served, any other Host is a 400
    (so even the trailing-slash redirects Starlette builds from the Host stay on trusted names)."""
    with make_client(settings, sample_db, public_url=PUBLIC, trusted_hosts=None) as c:
        for host in ("datso.tinh.gov.vn", "127.0.0.1:8000", "localhost"):
            r = c.get("/collections", headers={"Host": host})
            assert r.status_code == 200 and all(link["href"].startswith(PUBLIC) for link in r.json()["links"])
        r = c.get("/collections", headers={"Host": "evil.example"})
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
        r = c.get("/collections/", headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code == 400 and "location" not in r.headers
        # health probes (load balancers, k8s) come with any Host; /health carries no link
        r = c.get("/health", headers={"Host": "10.1.2.3:8000"})
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"


@pytest.fixture(scope="module")
def public_client(settings: Any, sample_db: str) -> Iterator[TestClient]:
    """DATSO_PUBLIC_URL set and any Host served (DATSO_TRUSTED_HOSTS=*): links never follow the Host."""
    with make_client(settings, sample_db, public_url=PUBLIC, trusted_hosts=["*"]) as c:
        yield c


def _urls(value: Any) -> list[str]:
    text = json.dumps(value) if not isinstance(value, str) else value
    return re.findall(r"https?://[^\s\"'<>\\]+", text)


@pytest.mark.parametrize("path", ["/", "/collections", "/collections/auction_plots",
                                  "/collections/auction_plots/items?limit=2", "/collections/auction_plots/items/1",
                                  "/collections/auction_plots/queryables", "/tiles/tilejson.json",
                                  "/collections/auction_plots/tiles/WebMercatorQuad", "/styles/default.json",
                                  "/imagery"])
def test_public_url_links_ignore_a_spoofed_host(public_client: TestClient, path: str) -> None:
    r = public_client.get(path, headers={"Host": "evil.example"})
    assert r.status_code == 200, r.text[:200]
    assert "evil.example" not in r.text
    own = [u for u in _urls(r.text) if u.startswith(PUBLIC)]
    assert own or path == "/imagery"


def test_public_url_in_pages_and_folium_exports(public_client: TestClient) -> None:
    for path in ("/map", "/collections/auction_plots/items?f=html&limit=3", "/maps/auction_plots.html?status=sold"):
        r = public_client.get(path, headers={"Host": "evil.example", **HTML})
        assert r.status_code == 200, path
        assert "evil.example" not in r.text, path
    r = public_client.get("/maps/auction_plots.html?status=sold", headers={"Host": "evil.example", **HTML})
    assert f"{PUBLIC}/static/vendor/leaflet/" in r.text    # the Folium assets: the public URL, not the Host
    r = public_client.get("/map", headers={"Host": "evil.example", **HTML})
    csp = directives(r.headers["content-security-policy"])
    assert PUBLIC in csp["script-src"] and PUBLIC in csp["connect-src"]


def test_write_location_follows_the_public_url(public_client: TestClient, officer: str, sample_db: str) -> None:
    base = public_client.get("/collections/auction_plots/items", params={"limit": 1, "status": "planned"}).json()
    f = base["features"][0]
    p = {**f["properties"], "plot_code": f"SEC-{uuid.uuid4().hex[:10]}", "status": "planned",
         "result_price_vnd": None}
    r = public_client.post("/collections/auction_plots/items",
                           content=json.dumps({"type": "Feature", "geometry": f["geometry"], "properties": p}),
                           headers={"Authorization": f"Bearer {officer}", "Content-Type": GEO, "Host": "evil.example"})
    assert r.status_code == 201, r.text
    assert r.headers["location"].startswith(f"{PUBLIC}/collections/auction_plots/items/")
    with psycopg.connect(sample_db) as conn:
        conn.execute("DELETE FROM auction_plots WHERE plot_code = %s", (p["plot_code"],))


# -- rate limits --------------------------------------------------------------------------------------------

@pytest.fixture()
def strict(settings: Any, sample_db: str) -> Iterator[httpx.Client]:
    """A live server with strict limits; uvicorn trusts X-Forwarded-For from 127.0.0.1 (as behind a local
    proxy), which is how these tests play a second client address."""
    from conftest import LiveServer, free_port

    from api.app import create_app

    api = ApiSettings(rate_limit_auth_failures="3/minute", rate_limit_search="5/minute", rate_limit_exports="2/minute")
    with LiveServer(create_app(settings=settings, api_settings=api, dsn=sample_db), free_port()) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        yield c


def test_wrong_keys_are_limited_per_address(strict: httpx.Client, officer: str, sample_db: str, settings: Any) -> None:
    before = table_fingerprint(sample_db, "auction_plots")
    url = "/collections/auction_plots/items/1"
    body = json.dumps({"properties": {"notes": "x"}})
    for i in range(3):
        r = strict.patch(url, content=body, headers={"X-API-Key": f"guess-{i}", "Content-Type": "application/merge-patch+json"})
        assert r.status_code == 401, r.text
    for lang, title in (("vi", "Quá nhiều yêu cầu"), ("en", "Too many requests")):
        r = strict.patch(f"{url}?lang={lang}", content=body,
                         headers={"Authorization": "Bearer guess-x", "Content-Type": "application/merge-patch+json"})
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["title"] == title and 1 <= int(r.headers["retry-after"]) <= 60
        common_headers(r, live=True)
    # even the right key waits from this address (the check comes before any lookup)...
    r = strict.patch(url, content=body, headers={"Authorization": f"Bearer {officer}",
                                                 "Content-Type": "application/merge-patch+json"})
    assert r.status_code == 429
    assert table_fingerprint(sample_db, "auction_plots") == before
    # ...while another address is not affected, and reads and requests without a key never are
    r = strict.patch(url, content=body, headers={"X-API-Key": "guess-y", "Content-Type": "application/merge-patch+json",
                                                 "X-Forwarded-For": "10.9.8.7"})
    assert r.status_code == 401
    assert strict.get("/collections/auction_plots/items?limit=1").status_code == 200
    r = strict.patch(url, content=body, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 401


def test_public_lookups_are_limited(strict: httpx.Client) -> None:
    for _ in range(5):
        assert strict.get("/search", params={"q": "DG"}).status_code == 200
    r = strict.get("/search", params={"q": "DG", "lang": "en"})
    assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Too many requests" and int(r.headers["retry-after"]) >= 1
    common_headers(r, live=True)
    for _ in range(2):
        assert strict.get("/maps/auction_plots.html", params={"status": "sold"}).status_code == 200
    r = strict.get("/maps/auction_plots.html", params={"status": "sold"})
    assert r.status_code == 429 and "retry-after" in r.headers
    # other routes and other addresses are not limited
    assert strict.get("/search", params={"q": "DG"}, headers={"X-Forwarded-For": "10.9.8.6"}).status_code == 200
    for _ in range(8):
        assert strict.get("/collections/auction_plots/items?limit=1").status_code == 200


def test_limits_can_be_switched_off(settings: Any, sample_db: str) -> None:
    with make_client(settings, sample_db, rate_limit_search="1/minute", rate_limit_enabled=False) as c:
        assert all(c.get("/search", params={"q": "DG"}).status_code == 200 for _ in range(3))
