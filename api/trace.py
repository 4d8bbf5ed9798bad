"""Public traceability: the trace chain, the GS1 Digital Link resolver, QR labels and the trace page.

- `GET /trace/{lot}` (JSON): the lot (by lot number; `?gtin=` when several products share it) one step back and
  one step forward (`?depth=n` up to `DATSO_TRACE_MAX_DEPTH`, or `?all=true` for the whole bounded chain):
  `layers.query.trace.chain`.
- `GET /01/{gtin}/10/{lot}`: the resolver. Browsers (`text/html`, the default) get the trace page;
  `Accept: application/linkset+json` (or `?linkType=all`) the GS1 linkset (RFC 9264); `Accept: application/json`
  the trace JSON. A GTIN with a wrong check digit is a 400 that says so, an unknown lot a 404 (problem+json).
  `GET /01/{gtin}`: the product's linkset / JSON (its lots).
- `GET /qr/01/{gtin}/10/{lot}.svg|.png` (also `/01/{gtin}/10/{lot}/qr.svg|png`): a QR code (segno) carrying the
  Digital Link URI on the public base URL.
All of them are public and rate-limited per IP (`DATSO_RATE_LIMIT_TRACE`, api/security.py).
"""
from __future__ import annotations

import io
import math
from pathlib import Path as FilePath
from typing import Any, Literal
from urllib.parse import quote

import orjson
import segno
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from api import openapi as oas
from api.errors import Problem
from api.security import public_base_url
from gis import gs1
from layers.query import trace as trace_
from layers.settings import ApiSettings
from layers.store import vocab

router = APIRouter(tags=["Traceability"])
_TEMPLATES = Environment(loader=FileSystemLoader(str(FilePath(__file__).parent / "templates")),
                         autoescape=select_autoescape(["html"]))
LINKSET = "application/linkset+json"
GS1_VOC = "https://gs1.org/voc/"
CROPS_EN = {"coconut": "Coconut", "durian": "Durian", "pomelo": "Pomelo", "dragon_fruit": "Dragon fruit",
            "rice": "Rice", "mango": "Mango", "longan": "Longan", "rambutan": "Rambutan"}
STATUS = {  # status of a code on the harvest day: (vi, en, css class)
    "active": ("Còn hiệu lực", "Valid", "ok"), "suspended": ("Bị tạm dừng", "Suspended", "bad"),
    "revoked": ("Bị thu hồi", "Revoked", "bad"), "expired": ("Hết hạn", "Expired", "warn"),
    "not_yet_valid": ("Chưa có hiệu lực", "Not yet valid", "warn"), "draft": ("Chưa được cấp", "Not granted", "warn"),
    "unregistered": ("Chưa đăng ký", "Not registered", "warn")}
STEPS = {  # (event type, bizStep) → (vi, en)
    ("ObjectEvent", "commissioning"): ("Thu hoạch, ghi nhận lô", "Harvest, lot recorded"),
    ("TransformationEvent", "packing"): ("Sơ chế, đóng gói thành lô mới", "Sorted and packed into a new lot"),
    ("AggregationEvent", "packing"): ("Xếp lên pallet", "Loaded on a pallet"),
    ("ObjectEvent", "shipping"): ("Xuất hàng", "Shipped"), ("ObjectEvent", "receiving"): ("Nhận hàng", "Received"),
    ("ObjectEvent", "inspecting"): ("Kiểm tra", "Inspected"), ("ObjectEvent", "storing"): ("Lưu kho", "Stored"),
}
CERT_VI = {"Organic": "Hữu cơ (Organic)"}
GTIN_PATTERN = "^([0-9]{8}|[0-9]{12,14})$"
LOT_PATTERN = "^[!-~]{1,20}$"
GtinPath = Path(pattern=GTIN_PATTERN, description="GTIN (AI 01), 8/12/13/14 digits with its check digit")
LotPath = Path(pattern=LOT_PATTERN, description="lot/batch number (AI 10), 1–20 characters")

_OBJ = {"type": "object"}
_ARR = {"type": "array", "items": _OBJ}
TRACE_SCHEMA = {"type": "object", "required": ["lot", "depth", "back", "forward", "origins", "packingHouses",
                                               "events", "warning"],
                "properties": {"lot": _OBJ, "depth": {"type": "integer"}, "complete": {"type": "boolean"},
                               "back": _ARR, "forward": _ARR, "origins": _ARR, "packingHouses": _ARR, "events": _ARR,
                               "eventsTruncated": {"type": "boolean"}, "warning": {"type": "boolean"}}}
LINKSET_SCHEMA = {"type": "object", "required": ["linkset"], "properties": {"linkset": {
    "type": "array", "items": {"type": "object", "required": ["anchor"], "properties": {"anchor": {"type": "string"}}}}}}
PRODUCT_SCHEMA = {"type": "object", "required": ["gtin", "lots"], "properties": {
    "gtin": {"type": "string"}, "product": {"type": "string"}, "digitalLink": {"type": "string"}, "lots": _ARR}}
_IMAGE: dict[int | str, dict[str, Any]] = {200: {"description": "The QR code", "content": {"image/svg+xml": {"schema": {"type": "string"}},
                                                           "image/png": {"schema": {"type": "string",
                                                                                    "format": "binary"}}}}}


# -- identifiers ----------------------------------------------------------------------------------------------

def check_gtin(value: str) -> str:
    try:
        return gs1.gtin(value)
    except gs1.IdentifierError as exc:
        raise Problem(400, f"GTIN (AI 01) không hợp lệ — {exc.vi}", f"GTIN (AI 01) is not valid — {exc.en}",
                      parameter="gtin") from None


def check_lot(value: str) -> str:
    try:
        return gs1.lot(value)
    except gs1.IdentifierError as exc:
        raise Problem(400, f"Số lô (AI 10) không hợp lệ — {exc.vi}", f"Lot number (AI 10) is not valid — {exc.en}",
                      parameter="lot") from None


def _unknown(gtin: str | None, lot: str) -> Problem:
    what = f"{gtin}/{lot}" if gtin else lot
    return Problem(404, f"Không tìm thấy lô {what}", f"No lot {what} is known", parameter="lot")


def dl_uri(request: Request, gtin: str, lot: str | None = None) -> str:
    """The Digital Link URI of a lot (or product) on this server's public base URL."""
    return gs1.digital_link(gtin, lot, base=public_base_url(request))


def _depth(request: Request, depth: int | None, all_: bool) -> int:
    top = _settings(request).trace_max_depth
    if depth is not None and depth > top:
        raise Problem(400, f"depth tối đa là {top} (hoặc dùng all=true)", f"depth is at most {top} (or use all=true)",
                      parameter="depth")
    return top if all_ else (depth or 1)


def _settings(request: Request) -> ApiSettings:
    s: ApiSettings = request.app.state.api_settings
    return s


async def _chain(request: Request, gtin: str | None, lot: str, depth: int) -> dict[str, Any]:
    async with request.app.state.db.connection("read") as conn:
        keys = await trace_.find_lots(conn, lot, gtin)
        if not keys:
            raise _unknown(gtin, lot)
        if len(keys) > 1:
            raise Problem(400, f"Số lô {lot} có ở {len(keys)} sản phẩm; thêm ?gtin=",
                          f"Lot {lot} exists for {len(keys)} products; add ?gtin=", parameter="gtin",
                          gtins=[k.gtin for k in keys])
        found = await trace_.chain(conn, keys[0], depth, _settings(request).trace_max_events)
    if found is None:
        raise _unknown(gtin, lot)
    found["lot"]["digitalLink"] = dl_uri(request, keys[0].gtin, keys[0].lot)
    return found


def _json(body: Any, media: str = "application/json", headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), media_type=media,
                    headers={"Cache-Control": "public, max-age=60", **(headers or {})})


# -- routes -------------------------------------------------------------------------------------------------------

@router.get("/trace/{lot}", summary="Trace a lot: one step back and one step forward (transitively on request)",
            responses={**oas.ok_json(TRACE_SCHEMA, "The trace chain"), **oas.problems(400, 404, 429, 503)})
async def trace_lot(request: Request, lot: str = LotPath,
                    gtin: str | None = Query(None, pattern=GTIN_PATTERN, description="GTIN of the lot (needed when "
                                                                                     "the lot number is used by "
                                                                                     "several products)"),
                    depth: int | None = Query(None, ge=1, le=32, description="steps back and forward (default 1; "
                                                                             "at most DATSO_TRACE_MAX_DEPTH)"),
                    all: bool = Query(False, description="the whole chain (up to DATSO_TRACE_MAX_DEPTH steps)"),
                    ) -> Response:
    g = check_gtin(gtin) if gtin is not None else None
    return _json(await _chain(request, g, check_lot(lot), _depth(request, depth, all)))


def _wants(request: Request) -> str:
    if request.query_params.get("linkType") in ("all", "linkset"):
        return "linkset"
    accept = request.headers.get("accept", "").lower()
    if LINKSET in accept:
        return "linkset"
    if "text/html" in accept or not accept or "*/*" in accept and "application/json" not in accept:
        return "html"
    return "json" if "json" in accept else "html"


def _linkset(request: Request, gtin: str, lot: str | None, product: str | None) -> dict[str, Any]:
    base = public_base_url(request)
    anchor = dl_uri(request, gtin, lot)
    entry: dict[str, Any] = {"anchor": anchor}
    if product:
        entry[GS1_VOC + "itemDescription"] = product
    if lot is not None:
        q = quote(lot, safe="")
        entry[GS1_VOC + "defaultLink"] = [{"href": anchor, "title": "Truy xuất nguồn gốc / Trace this lot",
                                          "type": "text/html", "hreflang": ["vi", "en"]}]
        entry[GS1_VOC + "traceability"] = [{"href": f"{base}/trace/{q}?gtin={gtin}&all=true",
                                           "title": "Trace chain", "type": "application/json"}]
        entry[GS1_VOC + "epcis"] = [{"href": f"{base}/epcis/events?MATCH_anyEPC={quote(gs1.lot_uri(gtin, lot))}",
                                    "title": "EPCIS events", "type": "application/ld+json"}]
        entry[GS1_VOC + "qrCode"] = [{"href": f"{base}/qr/01/{gtin}/10/{q}.svg", "type": "image/svg+xml"}]
    return {"linkset": [entry]}


@router.get("/01/{gtin}/10/{lot}", summary="GS1 Digital Link resolver: the lot's trace page, linkset or JSON",
            responses={200: {"description": "Trace page (text/html), linkset (application/linkset+json) or the "
                                            "trace (application/json)",
                             "content": {"text/html": {"schema": {"type": "string"}},
                                         LINKSET: {"schema": LINKSET_SCHEMA},
                                         "application/json": {"schema": TRACE_SCHEMA}}},
                       **oas.problems(400, 404, 429, 503)})
async def resolve_lot(request: Request, gtin: str = GtinPath, lot: str = LotPath) -> Response:
    g, lo = check_gtin(gtin), check_lot(lot)
    want = _wants(request)
    found = await _chain(request, g, lo, _settings(request).trace_max_depth)
    link = f'<{dl_uri(request, g, lo)}?linkType=all>; rel="linkset"; type="{LINKSET}"'
    if want == "linkset":
        return _json(_linkset(request, g, lo, found["lot"]["product"]), LINKSET)
    if want == "json":
        return _json(found, headers={"Link": link})
    lang = "en" if request.query_params.get("lang") == "en" else "vi"
    places = [o["communeCode"] for o in found["origins"]] + [h["communeCode"] for h in found["packingHouses"]]
    async with request.app.state.db.connection("read") as conn:
        communes = await trace_.commune_shapes(conn, places)
    html = render_page(found, lang, str(request.url.path), communes)
    return HTMLResponse(html, headers={"Cache-Control": "public, max-age=60", "Link": link,
                                       "Content-Language": lang, "Vary": "Accept"})


@router.get("/01/{gtin}", summary="GS1 Digital Link resolver: a product (its lots)",
            responses={200: {"description": "The product's linkset (application/linkset+json) or its lots (JSON)",
                             "content": {LINKSET: {"schema": LINKSET_SCHEMA},
                                         "application/json": {"schema": PRODUCT_SCHEMA}}},
                       **oas.problems(400, 404, 429, 503)})
async def resolve_product(request: Request, gtin: str = GtinPath) -> Response:
    g = check_gtin(gtin)
    async with request.app.state.db.connection("read") as conn:
        rows = await conn.fetch("SELECT lot_number, product, pack_date, harvest_date FROM trace_lots WHERE gtin = $1 "
                                "ORDER BY coalesce(pack_date, harvest_date) DESC NULLS LAST, lot_number LIMIT 50", g)
    if not rows:
        raise Problem(404, f"Không tìm thấy sản phẩm GTIN {g}", f"No product with GTIN {g} is known", parameter="gtin")
    if _wants(request) == "linkset":
        return _json(_linkset(request, g, None, rows[0]["product"]), LINKSET)
    return _json({"gtin": g, "product": rows[0]["product"], "digitalLink": dl_uri(request, g),
                  "lots": [{"lot": r["lot_number"], "digitalLink": dl_uri(request, g, r["lot_number"]),
                            "packDate": trace_._iso(r["pack_date"]), "harvestDate": trace_._iso(r["harvest_date"])}
                           for r in rows]})


async def _qr(request: Request, gtin: str, lot: str, fmt: str) -> Response:
    g, lo = check_gtin(gtin), check_lot(lot)
    if fmt not in ("svg", "png"):
        raise Problem(404, "Định dạng mã QR: .svg hoặc .png", "QR formats: .svg or .png", parameter="format")
    async with request.app.state.db.connection("read") as conn:
        if not await trace_.find_lots(conn, lo, g):
            raise _unknown(g, lo)
    code = segno.make(dl_uri(request, g, lo), error="m", micro=False)
    buf = io.BytesIO()
    if fmt == "svg":
        code.save(buf, kind="svg", scale=4, border=4, title=f"GTIN {g} · Lot {lo}")
        media = "image/svg+xml"
    else:
        code.save(buf, kind="png", scale=8, border=4)
        media = "image/png"
    return Response(buf.getvalue(), media_type=media, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/qr/01/{gtin}/10/{lot}.{fmt}", summary="QR label (SVG or PNG) carrying the lot's Digital Link URI",
            responses={**_IMAGE, **oas.problems(400, 404, 429, 503)})
async def qr_label(request: Request, gtin: str = GtinPath, lot: str = LotPath,
                   fmt: Literal["svg", "png"] = Path(description="svg or png")) -> Response:
    return await _qr(request, gtin, lot, fmt)


@router.get("/01/{gtin}/10/{lot}/qr.{fmt}", summary="QR label (SVG or PNG) of the lot (Digital Link path form)",
            responses={**_IMAGE, **oas.problems(400, 404, 429, 503)})
async def qr_label_dl(request: Request, gtin: str = GtinPath, lot: str = LotPath,
                      fmt: Literal["svg", "png"] = Path(description="svg or png")) -> Response:
    return await _qr(request, gtin, lot, fmt)


# -- the page ------------------------------------------------------------------------------------------------------

def _rings(geometry: dict[str, Any] | None) -> list[list[tuple[float, float]]]:
    g = geometry or {}
    polys = g.get("coordinates", []) if g.get("type") == "MultiPolygon" else [g.get("coordinates", [])]
    return [[(float(x), float(y)) for x, y, *_ in p[0]] for p in polys if p]


def origin_svg(origins: list[dict[str, Any]], houses: list[dict[str, Any]],
               communes: list[dict[str, Any]] | None = None, w: int = 320, h: int = 220) -> Markup:
    """A small inline SVG map: today's communes around (grey, for context), origin areas (numbered; red when the
    code was suspended/revoked at harvest, orange when otherwise not valid) and packing houses (blue squares),
    in a local equirectangular projection. No map library, no tiles."""
    rings = [(i, o, _rings(o.get("geometry"))) for i, o in enumerate(origins, 1)]
    context = [r for c in communes or [] for r in _rings(c.get("geometry"))]
    pts = [(float(hh["point"][0]), float(hh["point"][1])) for hh in houses if hh.get("point")]
    allxy = [xy for _, _, rs in rings for r in rs for xy in r] + pts + [xy for r in context for xy in r]
    if not allxy:
        return Markup("")
    x0, x1 = min(x for x, _ in allxy), max(x for x, _ in allxy)
    y0, y1 = min(y for _, y in allxy), max(y for _, y in allxy)
    k = math.cos(math.radians((y0 + y1) / 2))
    span = max((x1 - x0) * k, y1 - y0, 0.004)
    pad = 14.0
    s = min((w - 2 * pad) / max((x1 - x0) * k, span * 0.2), (h - 2 * pad) / max(y1 - y0, span * 0.2))
    ox = (w - (x1 - x0) * k * s) / 2
    oy = (h - (y1 - y0) * s) / 2

    def px(x: float, y: float) -> tuple[float, float]:
        return round(ox + (x - x0) * k * s, 1), round(oy + (y1 - y) * s, 1)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" class="map">',
           f'<rect width="{w}" height="{h}" fill="#eef3ea"/>']
    for r in context:
        d = " ".join(f"{a},{b}" for a, b in (px(x, y) for x, y in r))
        out.append(f'<polygon points="{d}" fill="#fff" fill-opacity="0.6" stroke="#9e9e9e" stroke-width="0.8"/>')
    for i, o, rs in rings:
        bad = not o.get("validAtHarvest")
        colour = "#c62828" if o.get("warning") else "#ef6c00" if bad else "#2e7d32"
        cx = cy = 0.0
        n = 0
        for r in rs:
            d = " ".join(f"{a},{b}" for a, b in (px(x, y) for x, y in r))
            out.append(f'<polygon points="{d}" fill="{colour}" fill-opacity="0.45" stroke="{colour}" '
                       'stroke-width="1.5"/>')
            for x, y in r:
                a, b = px(x, y)
                cx, cy, n = cx + a, cy + b, n + 1
        if n:
            cx, cy = cx / n, cy / n
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="9" fill="{colour}"/>'
                       f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" font-size="11" fill="#fff" '
                       f'font-weight="bold">{i}</text>')
    for x, y in pts:
        a, b = px(x, y)
        out.append(f'<rect x="{a - 6}" y="{b - 6}" width="12" height="12" fill="#1565c0" stroke="#fff"/>')
    out.append("</svg>")
    return Markup("".join(out))


def _local(iso: str) -> tuple[str, str]:
    """'2026-05-01T05:30:00+07:00' → ('01/05/2026', '05:30')."""
    d, t = iso[:10], iso[11:16]
    return f"{d[8:10]}/{d[5:7]}/{d[0:4]}", t


def _date_vn(iso: str | None) -> str:
    return f"{iso[8:10]}/{iso[5:7]}/{iso[0:4]}" if iso else ""


def render_page(found: dict[str, Any], lang: str, path: str, communes: list[dict[str, Any]] | None = None) -> str:
    vi = lang == "vi"
    lot = found["lot"]
    names = {h["location"]: h["name"] for h in found["packingHouses"]}
    names.update({o["location"]: o["code"] for o in found["origins"]})
    timeline = []
    for e in found["events"]:
        label = STEPS.get((e["type"], e.get("bizStep") or ""))
        day, hm = _local(e["eventTime"])
        ids = e.get("epcList", []) + ([e["parentID"]] if e.get("parentID") else [])
        sscc = next((x.rsplit("/", 1)[-1] for x in ids if "/00/" in x), None)
        timeline.append({"day": day, "time": hm, "label": (label[0] if vi else label[1]) if label else
                         f"{e['type']} · {e.get('bizStep') or ''}", "where": e.get("locationName"),
                         "kind": e.get("locationKind"), "sscc": sscc})
    origins = []
    for o in found["origins"]:
        st = STATUS.get(o["statusAtHarvest"], (o["statusAtHarvest"], o["statusAtHarvest"], "warn"))
        cur = STATUS.get(o["currentStatus"], (o["currentStatus"], o["currentStatus"], "warn"))
        origins.append({**o, "status_label": st[0] if vi else st[1], "status_class": st[2],
                        "current_label": cur[0] if vi else cur[1],
                        "crop_label": vocab.CROPS.get(o["crop"], o["crop"]) if vi else CROPS_EN.get(o["crop"], o["crop"]),
                        "harvest": _date_vn(o["harvestDate"]),
                        "certs": [CERT_VI.get(c, c) if vi else c for c in o["certifications"]]})
    cooperatives = sorted({o["cooperative"] for o in found["origins"] if o.get("cooperative")})
    tmpl = _TEMPLATES.get_template("trace_page.html")
    return tmpl.render(vi=vi, lang=lang, lot=lot, origins=origins, houses=found["packingHouses"],
                       timeline=timeline, cooperatives=cooperatives, map=origin_svg(found["origins"],
                                                                                   found["packingHouses"], communes),
                       warning=found["warning"], other=path + ("?lang=en" if vi else "?lang=vi"),
                       pack=_date_vn(lot.get("packDate")), harvest=_date_vn(lot.get("harvestDate")),
                       expiry=_date_vn(lot.get("expiryDate")), qr=f"/qr{path}.svg")
