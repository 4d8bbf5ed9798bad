"""The HTTP client: OGC API – Features reads (one whole-selection FlatGeobuf download, or GeoJSON pages
followed by their `next` links) and the service's aggregates."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

USER_AGENT = "datso-client/0.1"


class DatsoError(RuntimeError):
    """The service refused a request: `status`, the problem document's `detail` and the whole `problem`."""

    def __init__(self, status: int, detail: str, url: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {detail} ({url})")
        self.status, self.detail, self.url, self.problem = status, detail, url, problem or {}


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


class Client:
    """A datso service at `url` (its base, e.g. http://localhost:8000); `key`: an API key for officers;
    `lang`: the language of error messages (vi or en)."""

    def __init__(self, url: str, key: str | None = None, lang: str = "vi", timeout: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.key, self.lang, self.timeout = key, lang, timeout

    # -- HTTP ---------------------------------------------------------------------------------------------
    def _get(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> tuple[bytes, dict[str, str]]:
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.url + path_or_url
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        headers = {"User-Agent": USER_AGENT, "Accept-Language": self.lang}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        req = urllib.request.Request(url, headers=headers)  # noqa: S310 - the analyst's own service URL
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
            body, _ = self._get(path, {**params, "f": "fgb"})
            gdf = pyogrio.read_dataframe(io.BytesIO(body), fid_as_index=False)
            if "id" in gdf.columns:
                gdf = gdf.set_index("id")
            return gdf
        return self._pages(path, {**params, "f": "json", "limit": page_size})

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
