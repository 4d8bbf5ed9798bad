"""The HTTP client: OGC API – Features reads (one whole-selection FlatGeobuf download, or GeoJSON pages
followed by their `next` links), officers' all-or-nothing writes (the service's file import), zonal statistics
of raster layers, the service's aggregates, a lot's trace and "what is here" at a point."""

from __future__ import annotations

import io
import json
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
from pyproj import CRS

USER_AGENT = "datso-client/0.1"


class DatsoError(RuntimeError):
    """The service refused a request: `status`, the problem document's `detail` and the whole `problem`.

    For a refused write or import: `errors` (every issue: row, field, code, message), `rows` (the file rows
    named, 1-based) and, from `Client.write`, `index` (the GeoDataFrame's index labels of those rows)."""

    def __init__(self, status: int, detail: str, url: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail} ({url})")
        self.status, self.detail, self.url, self.problem = status, detail, url, problem or {}
        errors = self.problem.get("errors")
        self.errors: list[dict[str, Any]] = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) \
            else []
        named = [e.get("row") for e in self.errors] + [self.problem.get("row")]
        self.rows: list[int] = sorted({int(r) for r in named if isinstance(r, int)})
        self.index: list[Any] = []


def _bbox_text(bbox: Any) -> str | None:
    if bbox is None or isinstance(bbox, str):
        return bbox
    return ",".join(repr(float(v)) for v in bbox)


def _crs_uri(crs: Any) -> str | None:
    """EPSG:9210, 9210, an OGC URI or a datso alias (vn2000:…): what the service's `crs` parameter takes."""
    if crs is None:
        return None
    if isinstance(crs, int):
        return f"http://www.opengis.net/def/crs/EPSG/0/{crs}"
    text = str(crs)
    if text.upper().startswith("EPSG:") and text[5:].isdigit():
        return f"http://www.opengis.net/def/crs/EPSG/0/{text[5:]}"
    return text


class _EpsgBound(CRS):
    """A frame's VN-2000 CRS as the service defines it (`/crs`): bound to WGS 84 by the official Helmert, so
    `to_crs()` is the official shift, while `to_epsg()` answers the EPSG code (plain pyproj answers None for a
    BoundCRS). The server's `gis.crs.EpsgBoundCRS` does the same; the client imports nothing of the server."""

    def to_epsg(self, min_confidence: int = 70) -> int | None:
        src = self.source_crs
        return src.to_epsg(min_confidence) if self.is_bound and src is not None else super().to_epsg(min_confidence)

    def to_authority(self, auth_name: str | None = None, min_confidence: int = 70) -> tuple[str, str] | None:
        src = self.source_crs
        if self.is_bound and src is not None:
            return src.to_authority(auth_name, min_confidence)
        return super().to_authority(auth_name, min_confidence)


class Client:
    """A datso service at `url` (its base, e.g. http://localhost:8000); `key`: an API key for officers;
    `lang`: the language of error messages (vi or en)."""

    def __init__(self, url: str, key: str | None = None, lang: str = "vi", timeout: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.key, self.lang, self.timeout = key, lang, timeout
        self._arrays: dict[str, set[str]] = {}
        self._crs: dict[str, CRS] = {}

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _get(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
        return self._request("GET", path_or_url, params)

    def _request(self, method: str, path_or_url: str, params: Mapping[str, Any] | None = None,
                 body: bytes | None = None, content_type: str | None = None) -> tuple[bytes, dict[str, str]]:
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.url + path_or_url
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        headers = {"User-Agent": USER_AGENT, "Accept-Language": self.lang}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        if content_type:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 - own service
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return resp.read(), dict(resp.headers.items())
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                problem = json.loads(body)
                detail = str(problem.get("detail") or problem.get("title") or body[:300])
            except ValueError:
                problem, detail = None, body[:300].decode("utf-8", "replace")
            raise DatsoError(exc.code, detail, url, problem) from None

    def _selection(self, bbox: Any, bbox_crs: Any, filter: str | None, filter_lang: str | None,  # noqa: A002
                   datetime: str | None, where: Mapping[str, Any] | None) -> dict[str, Any]:
        p: dict[str, Any] = {"bbox": _bbox_text(bbox), "bbox-crs": _crs_uri(bbox_crs), "filter": filter,
                             "filter-lang": filter_lang, "datetime": datetime, "lang": self.lang}
        p.update({k: str(v) for k, v in (where or {}).items()})
        return p

    # -- reads --------------------------------------------------------------------------------------------
    def crs(self, crs: Any) -> CRS:
        """The service's own definition of `crs` (`/crs`; EPSG:9210, 9210, an OGC URI or an alias such as
        vn2000:ben-tre) as a pyproj CRS: for VN-2000 bound to WGS 84 by the official shift, so
        `gdf.to_crs(client.crs("vn2000:ben-tre"))` lands where the service would put it (plain
        `to_crs("EPSG:9210")` uses PROJ's pick, ~0.8 m off). Frames `read` in a VN-2000 CRS carry it already."""
        uri = _crs_uri(crs) or "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
        if uri not in self._crs:
            body, _ = self._get("/crs", {"crs": uri, "lang": self.lang})
            d = json.loads(body)["crs"][0]
            self._crs[uri] = _EpsgBound(d["wkt"]) if d.get("boundToWgs84") else CRS.from_wkt(d["wkt"])
        return self._crs[uri]

    def _official(self, gdf: gpd.GeoDataFrame, crs: Any) -> gpd.GeoDataFrame:
        """`gdf` (in `crs`, as the service answered) labelled with the service's definition of `crs`."""
        if crs is None or len(gdf.columns) == 0:
            return gdf
        official = self.crs(crs)
        return gdf.set_crs(official, allow_override=True) if official.is_bound else gdf

    def read(self, layer: str, *, bbox: Any = None, bbox_crs: Any = None, filter: str | None = None,  # noqa: A002
             filter_lang: str | None = None, datetime: str | None = None, crs: Any = None,
             where: Mapping[str, Any] | None = None, properties: list[str] | None = None,
             paged: bool = False, page_size: int = 1000) -> gpd.GeoDataFrame:
        """Every feature of `layer` in the selection, as a GeoDataFrame in `crs` (default CRS84 lon/lat).

        By default ONE request: the whole selection as FlatGeobuf (`items?f=fgb`, the service's download,
        up to its DATSO_DOWNLOAD_MAX_FEATURES); `paged=True` follows the GeoJSON pages' `next` links instead.
        `where`: equality filters (`{"status": "active"}`), like `?status=active`."""
        params = self._selection(bbox, bbox_crs, filter, filter_lang, datetime, where)
        params["crs"] = _crs_uri(crs)
        if properties is not None:
            params["properties"] = ",".join(properties)
        path = f"/collections/{urllib.parse.quote(layer)}/items"
        if not paged:
            try:
                body, _ = self._get(path, {**params, "f": "fgb"})
            except DatsoError as exc:
                if exc.status != 413:       # above the service's download ceiling: the pages have none
                    raise
            else:
                gdf = pyogrio.read_dataframe(io.BytesIO(body), fid_as_index=False)
                if "id" in gdf.columns:
                    gdf = gdf.set_index("id")
                for name in self._array_fields(layer) & set(gdf.columns):   # FlatGeobuf keeps arrays as JSON
                    gdf[name] = gdf[name].map(lambda v: json.loads(v) if isinstance(v, str) else v)
                return self._official(gdf, crs)
        return self._official(self._pages(path, {**params, "f": "json", "limit": page_size}), crs)

    def _array_fields(self, layer: str) -> set[str]:
        """The layer's array-valued fields (from its schema), so both read paths give Python lists."""
        if layer not in self._arrays:
            body, _ = self._get(f"/collections/{urllib.parse.quote(layer)}/schema", {"f": "json"})
            props = json.loads(body).get("properties", {})
            self._arrays[layer] = {k for k, v in props.items() if isinstance(v, dict) and "array" in _types(v)}
        return self._arrays[layer]

    def _pages(self, path: str, params: dict[str, Any]) -> gpd.GeoDataFrame:
        features: list[dict[str, Any]] = []
        url: str | None = path
        first = True
        member = None
        while url is not None:
            body, _ = self._get(url, params if first else None)
            first = False
            doc = json.loads(body)
            member = member or doc.get("crs")
            features += doc["features"]
            url = next((ln["href"] for ln in doc.get("links", []) if ln.get("rel") == "next"), None)
        # the GeoJSON `crs` member names the CRS of every non-CRS84 answer (aliases like vn2000:ben-tre too)
        out_crs = member["properties"]["name"] if member else "OGC:CRS84"
        ids = [f.get("id") for f in features]
        gdf = gpd.GeoDataFrame.from_features(features, crs=_geopandas_crs(out_crs))
        gdf.index = pd.Index(ids, name="id")
        return gdf

    def aggregate(self, layer: str, group_by: str | list[str] | None = None, *, count: Any = None,
                  sum: Any = None, avg: Any = None, min: Any = None, max: Any = None,  # noqa: A002
                  bbox: Any = None, bbox_crs: Any = None, filter: str | None = None,  # noqa: A002
                  filter_lang: str | None = None, datetime: str | None = None,
                  where: Mapping[str, Any] | None = None, labels: bool = True) -> pd.DataFrame:
        """`/collections/{layer}/aggregate` as a DataFrame: one row per group, the key columns (and with
        `labels`, `<key>_label` in the client's language), then `count` and `<op>_<field>` columns."""
        def names(v: Any) -> str | None:
            return v if v is None or isinstance(v, str) else ",".join(v)

        params = self._selection(bbox, bbox_crs, filter, filter_lang, datetime, where)
        params.update({"group_by": names(group_by), "count": names(count), "sum": names(sum), "avg": names(avg),
                       "min": names(min), "max": names(max), "f": "json"})
        body, _ = self._get(f"/collections/{urllib.parse.quote(layer)}/aggregate", params)
        doc = json.loads(body)
        rows = []
        for g in doc["groups"]:
            row = dict(g["key"])
            if labels:
                row.update({f"{k}_label": v for k, v in g["label"].items() if v != g["key"][k]})
            row.update(g["values"])
            rows.append(row)
        return pd.DataFrame(rows, columns=_columns(doc, rows))

    def transitions(self, layer: str, period: str = "month", datetime: str | None = None) -> pd.DataFrame:
        """Status changes per period from the service's audit history (`/collections/{layer}/transitions`)."""
        body, _ = self._get(f"/collections/{urllib.parse.quote(layer)}/transitions",
                            {"period": period, "datetime": datetime, "lang": self.lang})
        return pd.DataFrame(json.loads(body)["transitions"], columns=["period", "to", "label", "count"])

    # -- officers' writes ---------------------------------------------------------------------------------
    def write(self, layer: str, gdf: gpd.GeoDataFrame, *, field_map: str | Mapping[str, str] | None = None,
              repair: bool = False) -> dict[str, Any]:
        """Write every row of `gdf` to `layer` as new features, all or nothing (needs an officer's `key`).

        The frame goes to the service's import (`POST /collections/{layer}/imports`) as ONE GeoPackage in its
        own CRS (VN-2000 included), so the service runs the same checks as for an uploaded file (values,
        geometry, commune, overlaps) in one transaction. Returns the row report (`rows_read`, `rows_written`,
        `warnings`). Refused: `DatsoError` with the problem's detail, `errors`, `rows` (file rows, 1-based)
        and `index` (the labels of those rows in `gdf`); nothing is written. `field_map`: `{"file": "field"}`
        or the service's text form; `repair=True` accepts geometries repaired by make_valid."""
        if not isinstance(gdf, gpd.GeoDataFrame) or gdf.crs is None:
            raise ValueError("write: gdf must be a GeoDataFrame with a CRS (gdf.set_crs(...))")
        if len(gdf) == 0:
            raise ValueError("write: gdf has no rows")
        frame = gdf.reset_index(drop=True)
        frame = frame.drop(columns=[c for c in ("id",) if c in frame.columns])   # the service assigns ids
        for name in frame.columns:      # lists (as `read` gives array fields) travel as "VN,CN", as in a file
            if frame[name].dtype == object and frame[name].map(lambda v: isinstance(v, list | tuple)).any():
                frame[name] = frame[name].map(lambda v: ",".join(map(str, v)) if isinstance(v, list | tuple) else v)
        with tempfile.TemporaryDirectory(prefix="datso-client-") as tmp:
            path = Path(tmp) / f"{_safe_name(layer)}.gpkg"
            pyogrio.write_dataframe(frame, path, layer=_safe_name(layer), driver="GPKG")
            data = path.read_bytes()
        fields: dict[str, str] = {}
        if field_map:
            fields["field_map"] = field_map if isinstance(field_map, str) else \
                ",".join(f"{k}={v}" for k, v in field_map.items())
        body, ctype = _multipart(fields, "file", path.name, data, "application/geopackage+sqlite3")
        try:
            out, _ = self._request("POST", f"/collections/{urllib.parse.quote(layer)}/imports",
                                   {"lang": self.lang, "repair": "true" if repair else None}, body, ctype)
        except DatsoError as exc:
            if exc.status in (404, 405) and not exc.problem.get("errors"):   # no import route for the layer
                vi = f"Lớp '{layer}' không nhận ghi qua nhập tệp (không có /collections/{layer}/imports)"
                en = f"Layer '{layer}' takes no writes through an import (no /collections/{layer}/imports)"
                raise DatsoError(404, vi if self.lang == "vi" else en, exc.url, exc.problem) from None
            exc.index = [gdf.index[r - 1] for r in exc.rows if 1 <= r <= len(gdf)]
            raise
        report: dict[str, Any] = json.loads(out)
        return report

    # -- rasters and zonal statistics ---------------------------------------------------------------------
    def rasters(self) -> pd.DataFrame:
        """The service's raster layers (`/rasters`): name, crs, size, resolution, band names, synthetic."""
        body, _ = self._get("/rasters", {"lang": self.lang})
        rows = [{**{k: v for k, v in r.items() if k not in ("bands", "links")},
                 "bands": [b.get("name") for b in r.get("bands", [])]} for r in json.loads(body)["rasters"]]
        return pd.DataFrame(rows)

    def raster(self, name: str) -> dict[str, Any]:
        """One raster layer's metadata (`/rasters/{name}`): bands (index, name, expression name), CRS, bounds."""
        body, _ = self._get(f"/rasters/{urllib.parse.quote(name)}", {"lang": self.lang})
        doc: dict[str, Any] = json.loads(body)
        return doc

    def stats(self, layer: str, raster: str, fid: Any = None, *, band: int | str | None = None,
              expression: str | None = None, bbox: Any = None, bbox_crs: Any = None,
              filter: str | None = None, filter_lang: str | None = None,  # noqa: A002
              datetime: str | None = None, where: Mapping[str, Any] | None = None,
              features: bool = False, page_size: int = 1000) -> pd.DataFrame:
        """Zonal statistics of `raster` per feature of `layer` (partial pixels weighed by their coverage):
        a DataFrame indexed by feature id with count (covered pixels), mean, min, max, std, p10, p50, p90.

        `fid`: one feature; otherwise the selection (`bbox`, `filter`, `where`, `datetime`, as `read`), asked
        for `page_size` features at a time (the service's `limit`/`offset` pages, followed to the end), so a
        selection above the service's ceiling per request is not refused.
        `band`: an index or a band name (default 1); `expression`: band math such as `(b4-b3)/(b4+b3)` or
        with the raster's band names, `(nir-red)/(nir+red)`. `features=True` joins the features themselves
        (properties and geometry, lon/lat): a GeoDataFrame ready for a map. `.attrs` holds the raster, the
        measure, the CRS the statistics were computed in and whether the raster is synthetic."""
        if expression is not None and _names_in(expression):
            expression = self._band_names_to_b(raster, expression)
        params: dict[str, Any] = {"raster": raster, "band": None if band is None else str(band),
                                  "expression": expression, "f": "json"}
        if fid is None:
            params.update(self._selection(bbox, bbox_crs, filter, filter_lang, datetime, where))
            params["limit"] = str(page_size)
            url: str | None = f"/collections/{urllib.parse.quote(layer)}/stats"
            rows: list[dict[str, Any]] = []
            while url is not None:
                body, _ = self._get(url, params)
                doc = json.loads(body)
                rows.extend(doc["features"])
                url = next((ln["href"] for ln in doc.get("links", []) if ln.get("rel") == "next"), None)
                params = {}     # the next link carries every parameter
        else:
            params["lang"] = self.lang
            path = f"/collections/{urllib.parse.quote(layer)}/items/{urllib.parse.quote(str(fid))}/stats"
            body, _ = self._get(path, params)
            doc = json.loads(body)
            rows = [{k: doc.get(k) for k in ("id", *STATS)}]
        df = pd.DataFrame(rows, columns=["id", *STATS]).set_index("id")
        df = df.astype({k: "float64" for k in STATS})
        meta = {k: doc.get(k) for k in ("collection", "raster", "measure", "crs", "synthetic")}
        if features:
            if fid is None:
                gdf = self.read(layer, bbox=bbox, bbox_crs=bbox_crs, filter=filter, filter_lang=filter_lang,
                                datetime=datetime, where=where)
            else:
                gdf = self.feature(layer, fid)
            gdf.index = gdf.index.astype(df.index.dtype) if len(gdf) else gdf.index
            out = gpd.GeoDataFrame(gdf.join(df, how="inner"), geometry=gdf.geometry.name, crs=gdf.crs)
            out.attrs.update(meta)
            return out
        df.attrs.update(meta)
        return df

    def _band_names_to_b(self, raster: str, expression: str) -> str:
        names = {str(b["name"]).lower(): str(b.get("expression_name") or f"b{b['index']}")
                 for b in self.raster(raster).get("bands", []) if b.get("name")}

        def swap(m: re.Match[str]) -> str:
            return names.get(m.group(0).lower(), m.group(0))

        return _IDENT.sub(swap, expression)

    def feature(self, layer: str, fid: Any, *, crs: Any = None) -> gpd.GeoDataFrame:
        """One feature as a one-row GeoDataFrame (index: its id)."""
        body, _ = self._get(f"/collections/{urllib.parse.quote(layer)}/items/{urllib.parse.quote(str(fid))}",
                            {"f": "json", "crs": _crs_uri(crs), "lang": self.lang})
        doc = json.loads(body)
        member = doc.get("crs")
        gdf = gpd.GeoDataFrame.from_features([doc], crs=_geopandas_crs(
            member["properties"]["name"] if member else "OGC:CRS84"))
        gdf.index = pd.Index([doc.get("id")], name="id")
        return self._official(gdf, crs)

    # -- traceability and places --------------------------------------------------------------------------
    def trace(self, lot: str, *, gtin: str | None = None, depth: int | None = None,
              all: bool = True) -> Trace:  # noqa: A002
        """A lot's trace (`/trace/{lot}`): the whole chain by default (`all=False`, `depth=n`: n steps).

        Returns a `Trace`: `lot` (dict), `origins` (GeoDataFrame of the growing areas it came from, with their
        state on the harvest day), `packing_houses` (GeoDataFrame of points), `back`/`forward` (DataFrames of
        the lots before and after it), `events` (DataFrame of EPCIS events), `warning`, `complete` and `raw`
        (the service's JSON)."""
        params = {"gtin": gtin, "depth": depth, "all": "true" if all and depth is None else None,
                  "lang": self.lang}
        body, _ = self._get(f"/trace/{urllib.parse.quote(lot, safe='')}", params)
        return Trace.from_json(json.loads(body))

    def lookup(self, lon: float, lat: float, *, crs: Any = None) -> dict[str, Any]:
        """What is on record at a point (`/lookup`): `commune` (now) and `old_commune` (before the 2025
        reform) with the `crosswalk`, `parcel`, `planning_zone`, `land_price_zone`, and lists of
        `auction_plots` and `growing_areas` there, labelled in the client's language; `inside` is False off
        every layer. `crs`: the point's CRS (default lon/lat), e.g. "EPSG:9210" with x/y in metres."""
        body, _ = self._get("/lookup", {"lon": repr(float(lon)), "lat": repr(float(lat)), "crs": _crs_uri(crs),
                                        "lang": self.lang, "f": "json"})
        doc: dict[str, Any] = json.loads(body)
        return doc


STATS = ("count", "mean", "min", "max", "std", "p10", "p50", "p90")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _names_in(expression: str) -> bool:
    """Does the expression use names other than b1…bN (and numpy-like functions the service knows)?"""
    return any(not re.fullmatch(r"b\d+", w) for w in _IDENT.findall(expression)
               if w not in {"where", "sqrt", "abs", "log", "exp", "min", "max"})


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text)[:60] or "data"


def _multipart(fields: Mapping[str, str], file_field: str, filename: str, data: bytes,
               content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body (RFC 7578): the text fields, then the file."""
    boundary = "datso-" + uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode("utf-8") + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"'
                 f"\r\nContent-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Trace:
    """A lot's trace as frames a notebook can use (see `Client.trace`)."""

    lot: dict[str, Any]
    origins: gpd.GeoDataFrame
    packing_houses: gpd.GeoDataFrame
    back: pd.DataFrame
    forward: pd.DataFrame
    events: pd.DataFrame
    warning: bool
    complete: bool
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Trace:
        origins = doc.get("origins") or []
        shapes = [{"type": "Feature", "geometry": o.get("geometry"),
                   "properties": {k: v for k, v in o.items() if k != "geometry"}} for o in origins]
        houses = doc.get("packingHouses") or []
        points = [{"type": "Feature",
                   "geometry": {"type": "Point", "coordinates": h["point"]} if h.get("point") else None,
                   "properties": {k: v for k, v in h.items() if k != "point"}} for h in houses]
        return cls(lot=dict(doc.get("lot") or {}),
                   origins=_frame(shapes, ["code", "crop", "owner", "communeCode", "commune", "areaHa",
                                           "statusAtHarvest", "validAtHarvest", "currentStatus", "warning"]),
                   packing_houses=_frame(points, ["code", "name", "owner", "status", "communeCode"]),
                   back=_steps(doc.get("back") or []), forward=_steps(doc.get("forward") or []),
                   events=pd.DataFrame(doc.get("events") or []),
                   warning=bool(doc.get("warning")), complete=bool(doc.get("complete", True)), raw=doc)

    @property
    def lots(self) -> pd.DataFrame:
        """The lot itself, the lots before it (negative depth) and after it (positive), one row each."""
        me = pd.DataFrame([{**self.lot, "depth": 0}])
        back = self.back.assign(depth=-self.back["depth"]) if len(self.back) else self.back
        return pd.concat([back, me, self.forward], ignore_index=True).sort_values("depth", kind="stable")


def _frame(features: list[dict[str, Any]], columns: list[str]) -> gpd.GeoDataFrame:
    if not features:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=gpd.GeoSeries([], crs="OGC:CRS84"),
                                 crs="OGC:CRS84")
    return gpd.GeoDataFrame.from_features(features, crs="OGC:CRS84")


def _steps(steps: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per step of the chain: the lot's fields, its `depth`, `kind` and `id`."""
    rows = [{**(s.get("lot") or {}), "id": s.get("id"), "kind": s.get("kind"), "depth": s.get("depth")}
            for s in steps]
    return pd.DataFrame(rows, columns=None if rows else ["id", "kind", "depth"])


def _columns(doc: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    cols = list(doc["group_by"])
    cols += [c for r in rows for c in r if c.endswith("_label") and c not in cols]
    cols = list(dict.fromkeys(cols))
    return cols + list(doc["values"])


def _geopandas_crs(text: str) -> str:
    if text.startswith("http://www.opengis.net/def/crs/EPSG/0/"):
        return "EPSG:" + text.rsplit("/", 1)[1]
    if text.startswith("http://www.opengis.net/def/crs/OGC/1.3/CRS84"):
        return "OGC:CRS84"
    return text


def read_collection(base_url: str, layer: str, *, key: str | None = None, lang: str = "vi",
                    **kwargs: Any) -> gpd.GeoDataFrame:
    """One line for an analyst: `read_collection(url, "parcels", filter=…, bbox=…, crs="EPSG:9210")`."""
    return Client(base_url, key=key, lang=lang).read(layer, **kwargs)


def aggregate(base_url: str, layer: str, group_by: str | list[str] | None = None, *, key: str | None = None,
              lang: str = "vi", **kwargs: Any) -> pd.DataFrame:
    """`aggregate(url, "growing_areas", "crop,status", sum="area_m2")` -> DataFrame."""
    return Client(base_url, key=key, lang=lang).aggregate(layer, group_by, **kwargs)


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    return [t] if isinstance(t, str) else list(t) if isinstance(t, list) else []
