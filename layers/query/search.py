"""Server-side search for the web map: plot codes, addresses, parcel numbers, growing-area codes, names.

Driven by the layer registry: every layer with `search_fields` is searchable on those fields (text match,
case- and accent-insensitive, so "ben tre" finds "Bến Tre"). A parcel number written the surveyors' way —
"tờ 12 thửa 345", "t12 th345" or "12/345" — is matched on the layers that have map-sheet and parcel-number
fields, and on the layers that link to parcels (auction plots with `parcel_ids`).

User text only ever travels as SQL parameters; identifiers come from the registry. Results carry the
feature's bbox and a point on its surface (lon/lat, EPSG:4326) so the map can fly to it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gis.errors import BilingualError
from layers.catalog.registry import LAYERS, Layer, UnknownLayer, get_layer
from layers.store.sql import quote_ident as _q

MAX_QUERY_LENGTH = 120
MAX_LIMIT = 50
SHEET_FIELD, PARCEL_FIELD = "map_sheet", "parcel_no"   # a layer with both supports "tờ 12 thửa 345"
LINK_FIELD = "parcel_ids"                               # a layer with it is found through its parcels
PARCEL_LAYER = "parcels"

# "Xã Thạnh Long" is an exact match for "thanh long": administrative prefixes (folded) are ignored for ranking
ADMIN_PREFIX = "^(xa|phuong|thi tran|thi xa|tinh|thanh pho|huyen|quan) "
_FOLDABLE = re.compile(r"[aeiouyd]+")       # letters a Vietnamese letter with diacritics can fold to
_PARCEL_PATTERNS = (
    re.compile(r"^\s*(?:to|t)\.?\s*(?:so\s*)?(\d{1,5})\s*[,;-]?\s*(?:thua|th)\.?\s*(?:so\s*)?(\d{1,6})\s*$"),
    re.compile(r"^\s*(\d{1,5})\s*/\s*(\d{1,6})\s*$"),
)


class SearchError(BilingualError):
    """A search request that cannot be run; bilingual message."""


def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics ("Thửa Đất" -> "thua dat")."""
    nfd = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in nfd if not unicodedata.combining(c)).lower()


_VOWELS = {"a": "a", "ă": "a\u0306", "â": "a\u0302", "e": "e", "ê": "e\u0302", "i": "i", "o": "o",
           "ô": "o\u0302", "ơ": "o\u031b", "u": "u", "ư": "u\u031b", "y": "y"}
_TONES = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")


@lru_cache(maxsize=1)
def fold_table() -> tuple[str, str]:
    """(from, to) strings for SQL `translate(lower(x), from, to)`: the 67 lower-case Vietnamese letters with
    diacritics and their bare letters. Kept short on purpose: translate() costs grow with the table."""
    chars = {"đ"}
    for base in _VOWELS.values():
        for tone in _TONES:
            ch = unicodedata.normalize("NFC", base + tone)
            if len(ch) == 1 and fold(ch) != ch:
                chars.add(ch)
    src = "".join(sorted(chars))
    return src, "".join(fold(c) for c in src)


def folded_sql(column: str) -> str:
    """SQL folding `column` like `fold` does (constant tables, so an expression index can match it)."""
    src, dst = fold_table()
    return f"translate(lower({column}::text), '{src}', '{dst}')"


def like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class ParsedQuery:
    text: str                       # NFC, stripped
    folded: str                     # for accent-insensitive matching
    sheet_parcel: tuple[int, int] | None

    @property
    def pieces(self) -> tuple[str, ...]:
        """Runs of the folded text that folding cannot have produced (no vowel, no d): the raw lower-cased
        value must contain each of them. Checking these with strpos() first spares most rows the costly
        translate() (8.3 s -> well under a second over 1,000,000 parcel addresses)."""
        runs = sorted({r for r in _FOLDABLE.split(self.folded) if len(r.strip()) >= 2}, key=len, reverse=True)
        return tuple(runs[:4])


def parse_query(q: str | None) -> ParsedQuery:
    text = unicodedata.normalize("NFC", (q or "")).strip()
    text = re.sub(r"\s+", " ", text)
    if len(text) < 1:
        raise SearchError("Nhập nội dung cần tìm (mã lô, địa chỉ, số tờ/số thửa, mã vùng trồng)",
                          "Enter something to search for (plot code, address, sheet/parcel, growing-area code)")
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchError(f"Nội dung tìm kiếm quá dài (tối đa {MAX_QUERY_LENGTH} ký tự)",
                          f"The search text is too long (at most {MAX_QUERY_LENGTH} characters)")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise SearchError("Nội dung tìm kiếm chứa ký tự điều khiển", "The search text contains control characters")
    folded = fold(text)
    sheet_parcel = None
    for pat in _PARCEL_PATTERNS:
        m = pat.match(folded)
        if m:
            sheet_parcel = (int(m.group(1)), int(m.group(2)))
            break
    return ParsedQuery(text, folded, sheet_parcel)


def searchable_layers() -> tuple[Layer, ...]:
    """Layers with search fields; those with a business code (plots, growing areas...) first."""
    found = [layer for layer in LAYERS.values() if layer.search_fields or _has_sheet(layer) or _links(layer)]
    return tuple(sorted(found, key=lambda layer: layer.code_field is None))


def _has_sheet(layer: Layer) -> bool:
    return layer.get_field(SHEET_FIELD) is not None and layer.get_field(PARCEL_FIELD) is not None


def _links(layer: Layer) -> bool:
    f = layer.get_field(LINK_FIELD)
    return f is not None and PARCEL_LAYER in LAYERS


def resolve_layers(names: str | None) -> tuple[Layer, ...]:
    """The layers to search: a comma-separated list of registry ids, default every searchable layer."""
    allowed = searchable_layers()
    if not names:
        return allowed
    out: list[Layer] = []
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        try:
            layer = get_layer(name)
        except UnknownLayer:
            raise SearchError(f"Không có lớp '{name}'; tìm được trong: {', '.join(x.id for x in allowed)}",
                              f"No layer '{name}'; searchable layers: {', '.join(x.id for x in allowed)}") from None
        if layer not in allowed:
            raise SearchError(f"Lớp '{name}' không hỗ trợ tìm kiếm; tìm được trong: "
                              f"{', '.join(x.id for x in allowed)}",
                              f"Layer '{name}' is not searchable; searchable layers: "
                              f"{', '.join(x.id for x in allowed)}")
        if layer not in out:
            out.append(layer)
    if not out:
        raise SearchError("Danh sách lớp trống", "The layer list is empty")
    return tuple(out)


def _layer_select(layer: Layer, parsed: ParsedQuery) -> str | None:
    """One SELECT for `layer`. Parameters: $1 folded text, $2 its LIKE pattern, $3 limit, $4 sheet and
    $5 parcel (these two only for a parcel-number query), then the prefilter pieces.
    Rank 0 = exact (code or parcel number), 1 = prefix, 2 = contained. Layers without a business code (parcel
    addresses, names) are not sorted before their LIMIT, so a common word stops the scan early."""
    t = "t."
    first_piece = 6 if parsed.sheet_parcel is not None else 4
    conds: list[str] = []
    ranks: list[str] = []
    for name in layer.search_fields:
        f = layer.get_field(name)
        if f is None or not f.public:
            continue
        col = folded_sql(f"{t}{_q(name)}")
        raw = f"lower({t}{_q(name)}::text)"
        pre = " AND ".join(f"strpos({raw}, ${first_piece + i}) > 0" for i in range(len(parsed.pieces)))
        conds.append(f"CASE WHEN {pre} THEN {col} LIKE $2 ELSE false END" if pre else f"{col} LIKE $2")
        bare = f"regexp_replace({col}, '{ADMIN_PREFIX}', '')"
        ranks.append(f"CASE WHEN {col} = $1 OR {bare} = $1 THEN 0 WHEN left({col}, length($1)) = $1 THEN 1 ELSE 2 END")
    if parsed.sheet_parcel is not None:
        if _has_sheet(layer):
            conds.append(f"({t}{_q(SHEET_FIELD)} = $4 AND {t}{_q(PARCEL_FIELD)} = $5)")
            ranks.append(f"CASE WHEN {t}{_q(SHEET_FIELD)} = $4 AND {t}{_q(PARCEL_FIELD)} = $5 THEN 0 ELSE 3 END")
        if _links(layer):
            p = get_layer(PARCEL_LAYER)
            link = (f"EXISTS (SELECT 1 FROM {_q(p.table)} p "  # noqa: S608 - registry identifiers only
                    f"WHERE p.{_q(p.id_column)} = ANY({t}{_q(LINK_FIELD)}) "
                    f"AND p.{_q(SHEET_FIELD)} = $4 AND p.{_q(PARCEL_FIELD)} = $5)")
            conds.append(link)
            ranks.append(f"CASE WHEN {link} THEN 0 ELSE 3 END")
    if not conds:
        return None
    label = layer.label_field or layer.id_column
    g = f"{t}{_q(layer.geometry_column)}"
    rank = ranks[0] if len(ranks) == 1 else f"LEAST({', '.join(ranks)})"
    shown = (*layer.search_fields, label, *((SHEET_FIELD, PARCEL_FIELD) if _has_sheet(layer) else ()))
    props = ", ".join(f"'{name}', {t}{_q(name)}" for name in dict.fromkeys(shown)
                      if (fl := layer.get_field(name)) is not None and fl.public)
    return (
        f"(SELECT '{layer.id}'::text AS layer, {t}{_q(layer.id_column)}::text AS id, "  # noqa: S608
        f"{t}{_q(label)}::text AS label, json_build_object({props}) AS properties, {rank} AS rank, "
        f"ST_XMin({g}) AS xmin, ST_YMin({g}) AS ymin, ST_XMax({g}) AS xmax, ST_YMax({g}) AS ymax, "
        f"ST_X(ST_PointOnSurface({g})) AS lon, ST_Y(ST_PointOnSurface({g})) AS lat "
        f"FROM {_q(layer.table)} t WHERE {g} IS NOT NULL AND ({' OR '.join(conds)}) "
        f"{'ORDER BY 5, 3 ' if layer.code_field else ''}LIMIT $3)"
    )


def search_sql(layers: Sequence[Layer], parsed: ParsedQuery, limit: int) -> tuple[str, list[Any]]:
    """The one statement searching `layers`, and its parameters."""
    selects = [s for layer in layers if (s := _layer_select(layer, parsed)) is not None]
    if not selects:
        raise SearchError("Không lớp nào trong danh sách hỗ trợ kiểu tìm kiếm này",
                          "None of these layers supports this kind of search")
    order = ", ".join(f"'{layer.id}'" for layer in layers)
    sql = (f"SELECT * FROM ({' UNION ALL '.join(selects)}) r "  # noqa: S608 - registry identifiers only
           f"ORDER BY rank, array_position(ARRAY[{order}]::text[], layer), label LIMIT $3")
    params: list[Any] = [parsed.folded, like_pattern(parsed.folded), limit]
    if parsed.sheet_parcel is not None:
        params += list(parsed.sheet_parcel)
    params += list(parsed.pieces)
    return sql, params


def _label(layer: Layer, row: Any, lang: str) -> str:
    props = row["properties"] or {}
    if _has_sheet(layer) and props.get(SHEET_FIELD) is not None:
        sheet, parcel = props[SHEET_FIELD], props.get(PARCEL_FIELD)
        return f"Tờ {sheet} thửa {parcel}" if lang == "vi" else f"Sheet {sheet}, parcel {parcel}"
    return str(row["label"])


def to_feature(row: Any, lang: str = "vi") -> dict[str, Any]:
    layer = get_layer(row["layer"])
    props = row["properties"] or {}
    bbox = [row["xmin"], row["ymin"], row["xmax"], row["ymax"]]
    return {
        "type": "Feature", "id": row["id"],
        "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        "bbox": bbox,
        "properties": {"layer": layer.id, "layer_title": layer.title(lang), "label": _label(layer, row, lang),
                       "exact": row["rank"] == 0, **props},
        "links": [{"rel": "self", "type": "application/geo+json",
                   "href": f"/collections/{layer.id}/items/{row['id']}"}],
    }


async def search(conn: Any, q: str | None, layers: str | None = None, limit: int = 10,
                 lang: str = "vi") -> dict[str, Any]:
    """Run a search on an asyncpg connection; returns a GeoJSON FeatureCollection with a bbox."""
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit phải từ 1 đến {MAX_LIMIT}", f"limit must be between 1 and {MAX_LIMIT}")
    parsed = parse_query(q)
    chosen = resolve_layers(layers)
    sql, params = search_sql(chosen, parsed, limit)
    rows = await conn.fetch(sql, *params)
    features = [to_feature(r, lang) for r in rows]
    bbox = None
    if features:
        bbox = [min(f["bbox"][0] for f in features), min(f["bbox"][1] for f in features),
                max(f["bbox"][2] for f in features), max(f["bbox"][3] for f in features)]
    return {"type": "FeatureCollection", "query": parsed.text,
            "parcel": ({"map_sheet": parsed.sheet_parcel[0], "parcel_no": parsed.sheet_parcel[1]}
                       if parsed.sheet_parcel else None),
            "layers": [x.id for x in chosen], "numberReturned": len(features), "bbox": bbox,
            "features": features}
