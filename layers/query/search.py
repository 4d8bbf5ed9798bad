"""Server-side search for the web map: plot codes, addresses, parcel numbers, growing-area codes, names.

Driven by the layer registry: every layer with `search_fields` is searchable on those fields, folded by the
database function `datso_fold` (unaccent + lower, migration 0010) and matched with GIN trigram indexes. The
search forgives in tiers, each tried only when the one before found nothing:
1. the text as written, case- and accent-insensitive ("ben tre" finds "Bến Tre"), the last word possibly cut
   short ("nguyen dinh chie": a last word of four letters or more that is no known word);
2. every word, in any order ("dong khoi xuan phong" finds "85 Đồng Khởi, xã Xuân Phong");
3. every word as a part of a word ("ong khoi");
4. misspelt words corrected to the nearest word of the searched text (`search_words`, levenshtein distance;
   words with digits — numbers, codes — are never corrected), then 2 again.
Tiers 1, 2 and 4 are driven by a GIN index on the words (to_tsvector 'simple'), tier 3 by a GIN trigram
index; a text found nowhere costs a few index probes.
An administrative unit abolished in 2025 is returned with the units that replaced it. A parcel number written
the surveyors' way —
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
ADMIN_PREFIX = "^(xa|phuong|thi tran|thi xa|tinh|thanh pho|huyen|quan|dac khu) "
ADMIN_LAYER = "admin_units"       # its abolished units are returned with their successors (admin_crosswalk)
_FOLDABLE = re.compile(r"[aeiouyd]+")       # letters a Vietnamese letter with diacritics can fold to
_PARCEL_PATTERNS = (
    re.compile(r"^\s*(?:to|t)\.?\s*(?:so\s*)?(\d{1,5})\s*[,;-]?\s*(?:thua|th)\.?\s*(?:so\s*)?(\d{1,6})\s*$"),
    re.compile(r"^\s*(\d{1,5})\s*/\s*(\d{1,6})\s*$"),
)
MAX_TOKENS = 8
CANDIDATES = 200     # rows read per layer before ranking (a common word must not rank the whole table)
PHRASE_SCAN = 2000   # rows with every word of the text checked for the whole phrase, per layer
TIERS = ("phrase", "words", "partial", "similar")
PREFIX_MIN = 4         # a last word this long may be cut short ("nguyen dinh chie"); shorter ones are common prefixes


class SearchError(BilingualError):
    """A search request that cannot be run; bilingual message."""


def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics ("Thửa Đất" -> "thua dat")."""
    nfd = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in nfd if not unicodedata.combining(c)).lower()


def document_sql(layer: Layer, prefix: str = "t.") -> str:
    """The folded text searched in `layer`: its search fields joined by spaces. The same expression as the GIN
    trigram index of migration 0010, so the planner uses it."""
    cols = [f"{prefix}{_q(name)}" for name in layer.search_fields]
    if len(cols) == 1:
        return f"datso_fold({cols[0]}::text)"
    return "datso_fold(" + " || ' ' || ".join(f"coalesce({c}::text, '')" for c in cols) + ")"


def words_sql(layer: Layer, prefix: str = "t.") -> str:
    """The words of `document_sql` (the expression of the migration's words index)."""
    return f"to_tsvector('simple'::regconfig, {document_sql(layer, prefix)})"


def tsquery_sql(text_param: str, prefix_last: bool) -> str:
    """Every word of the text; the last one may be cut short (`:*`)."""
    q = f"plainto_tsquery('simple'::regconfig, {text_param})"
    return f"(CASE WHEN {q}::text = '' THEN {q} ELSE ({q}::text || ':*')::tsquery END)" if prefix_last else q


def like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class ParsedQuery:
    text: str                       # NFC, stripped
    folded: str                     # for accent-insensitive matching
    sheet_parcel: tuple[int, int] | None

    @property
    def tokens(self) -> tuple[str, ...]:
        """The words of the folded text (commas and semicolons are spaces), at most MAX_TOKENS."""
        words = [w for w in re.split(r"[\s,;]+", self.folded) if w]
        return tuple(dict.fromkeys(words))[:MAX_TOKENS]

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


class _Params:
    """Positional parameters ($n) collected while the SQL is written."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _layer_select(layer: Layer, parsed: ParsedQuery, tier: str, p: _Params, text: str, limit: str,
                  words: str | None = None) -> str | None:
    """One SELECT for `layer` in a search tier. Rank 0 = exact (code, name without its prefix, parcel
    number), 1 = prefix, 2 = contained, 3 = similar; then word similarity."""
    t = "t."
    conds: list[str] = []
    fields = [n for n in layer.search_fields if (f := layer.get_field(n)) is not None and f.public]
    doc = document_sql(layer, t) if fields and len(fields) == len(layer.search_fields) else None
    if doc is not None:
        if tier == "phrase" and words is not None:
            # rows with every word, then the phrase among at most PHRASE_SCAN of them: common words (a commune's
            # name is in every address of the commune) must not make the phrase check read the whole table
            pick = (f"ARRAY(SELECT x.{_q(layer.id_column)} FROM {_q(layer.table)} x "  # noqa: S608 - registry
                    f"WHERE {words_sql(layer, 'x.')} @@ {words} LIMIT {PHRASE_SCAN})")
            conds.append(f"({t}{_q(layer.id_column)} = ANY({pick}) AND strpos({doc}, {text}) > 0)")
        elif tier in ("words", "similar") and words is not None:
            conds.append(f"{words_sql(layer, t)} @@ {words}")
        elif tier == "partial":
            conds.append(" AND ".join(f"{doc} LIKE {p.add(like_pattern(w))}" for w in parsed.tokens))
    ranks: list[str] = []
    folded = [f"datso_fold({t}{_q(name)}::text) AS f{i}" for i, name in enumerate(fields)]   # once per row
    for i, _name in enumerate(fields):
        col = f"fo.f{i}"
        bare = f"regexp_replace({col}, '{ADMIN_PREFIX}', '')"
        ranks.append(f"CASE WHEN {col} = {text} OR {bare} = {text} THEN 0 WHEN left({col}, length({text})) = {text} "
                     f"THEN 1 WHEN strpos({col}, {text}) > 0 THEN 2 ELSE 3 END")
    if parsed.sheet_parcel is not None and tier == "phrase" and (_has_sheet(layer) or _links(layer)):
        sheet, parcel = p.add(parsed.sheet_parcel[0]), p.add(parsed.sheet_parcel[1])
        if _has_sheet(layer):
            conds.append(f"({t}{_q(SHEET_FIELD)} = {sheet} AND {t}{_q(PARCEL_FIELD)} = {parcel})")
            ranks.append(f"CASE WHEN {t}{_q(SHEET_FIELD)} = {sheet} AND {t}{_q(PARCEL_FIELD)} = {parcel} "
                         "THEN 0 ELSE 3 END")
        if _links(layer):
            pl = get_layer(PARCEL_LAYER)
            link = (f"EXISTS (SELECT 1 FROM {_q(pl.table)} p "  # noqa: S608 - registry identifiers only
                    f"WHERE p.{_q(pl.id_column)} = ANY({t}{_q(LINK_FIELD)}) "
                    f"AND p.{_q(SHEET_FIELD)} = {sheet} AND p.{_q(PARCEL_FIELD)} = {parcel})")
            conds.append(link)
            ranks.append(f"CASE WHEN {link} THEN 0 ELSE 3 END")
    if not conds:
        return None
    label = layer.label_field or layer.id_column
    g = f"{t}{_q(layer.geometry_column)}"
    rank = "3" if not ranks else ranks[0] if len(ranks) == 1 else f"LEAST({', '.join(ranks)})"
    score = (f"similarity({text}, " + " || ' ' || ".join(f"coalesce(fo.f{i}, '')" for i in range(len(fields))) + ")"
             if doc is not None else "0")
    lateral = f" CROSS JOIN LATERAL (SELECT {', '.join(folded)}) fo" if folded else ""
    shown = (*layer.search_fields, label, *((SHEET_FIELD, PARCEL_FIELD) if _has_sheet(layer) else ()))
    props = ", ".join(f"'{name}', {t}{_q(name)}" for name in dict.fromkeys(shown)
                      if (fl := layer.get_field(name)) is not None and fl.public)
    return (
        f"(SELECT '{layer.id}'::text AS layer, {t}{_q(layer.id_column)}::text AS id, "  # noqa: S608
        f"{t}{_q(label)}::text AS label, json_build_object({props}) AS properties, {rank} AS rank, "
        f"{score} AS score, "
        f"ST_XMin({g}) AS xmin, ST_YMin({g}) AS ymin, ST_XMax({g}) AS xmax, ST_YMax({g}) AS ymax, "
        f"ST_X(ST_PointOnSurface({g})) AS lon, ST_Y(ST_PointOnSurface({g})) AS lat "
        f"FROM (SELECT * FROM {_q(layer.table)} t WHERE {g} IS NOT NULL AND ({' OR '.join(conds)}) "
        f"LIMIT {CANDIDATES}) t{lateral} ORDER BY 5, 6 DESC, 3 LIMIT {limit})"
    )


def search_sql(layers: Sequence[Layer], parsed: ParsedQuery, limit: int, tier: str = "phrase",
               corrected: str | None = None, prefix_last: bool = False) -> tuple[str, list[Any]]:
    """The one statement searching `layers` in one tier, and its parameters (`corrected`: the text with its
    misspelt words corrected, for the "similar" tier; `prefix_last`: the last word may be cut short)."""
    p = _Params()
    text, lim = p.add(parsed.folded), p.add(limit)
    words = None
    if tier in ("phrase", "words"):
        words = tsquery_sql(text, prefix_last)
    elif tier == "similar" and corrected is not None:
        words = tsquery_sql(p.add(corrected), False)
    selects = [s for layer in layers
               if (s := _layer_select(layer, parsed, tier, p, text, lim, words)) is not None]
    if not selects:
        raise SearchError("Không lớp nào trong danh sách hỗ trợ kiểu tìm kiếm này",
                          "None of these layers supports this kind of search")
    order = ", ".join(f"'{layer.id}'" for layer in layers)
    sql = (f"SELECT * FROM ({' UNION ALL '.join(selects)}) r "  # noqa: S608 - registry identifiers only
           f"ORDER BY rank, array_position(ARRAY[{order}]::text[], layer), score DESC, label LIMIT {lim}")
    return sql, p.values


def _tiers(parsed: ParsedQuery) -> tuple[str, ...]:
    """The tiers worth trying: reordered words need two words; parts of words and corrections need a word of
    three letters (a shorter one cannot use the trigram index)."""
    out = ["phrase"]
    if len(parsed.tokens) > 1:
        out.append("words")
    if any(len(w) >= 3 for w in parsed.tokens):
        out += ["partial", "similar"]
    return tuple(out)


async def last_word_is_cut(conn: Any, parsed: ParsedQuery) -> bool:
    """Whether the last word looks cut short: four letters or more and not a word of `search_words`. A whole
    word is matched as such (a prefix search of a common word reads its whole posting list and more)."""
    last = parsed.tokens[-1] if parsed.tokens else ""
    if len(last) < PREFIX_MIN or not last.isalpha():
        return False
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM search_words WHERE word = $1)", last)


async def corrected_text(conn: Any, parsed: ParsedQuery) -> str | None:
    """The text with each unknown word (three letters or more, no digit) replaced by the nearest word of
    `search_words`: at most one edit (levenshtein) in a word of up to five letters, two in a longer one; the
    most frequent of the nearest. None when nothing was corrected."""
    candidates = [w for w in parsed.tokens if len(w) >= 3 and w.isalpha()]
    if not candidates:
        return None
    rows = await conn.fetch(
        "SELECT t.tok, (SELECT w.word FROM search_words w WHERE length(w.word) BETWEEN length(t.tok) - 2 "
        "AND length(t.tok) + 2 AND levenshtein(w.word, t.tok) <= CASE WHEN length(t.tok) <= 5 THEN 1 ELSE 2 END "
        "ORDER BY levenshtein(w.word, t.tok), w.ndoc DESC, w.word LIMIT 1) AS fix "
        "FROM unnest($1::text[]) AS t(tok) WHERE NOT EXISTS (SELECT 1 FROM search_words k WHERE k.word = t.tok)",
        candidates)
    fixes = {r["tok"]: r["fix"] for r in rows if r["fix"]}
    if not fixes:
        return None
    return " ".join(fixes.get(w, w) for w in parsed.tokens)


async def _successors(conn: Any, rows: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """Abolished administrative units among `rows` -> the units that replaced them (admin_crosswalk)."""
    if ADMIN_LAYER not in LAYERS:
        return {}
    ids = [int(r["id"]) for r in rows if r["layer"] == ADMIN_LAYER]
    if not ids:
        return {}
    layer = get_layer(ADMIN_LAYER)
    found = await conn.fetch(
        f"SELECT u.{_q(layer.id_column)}::text AS id, c.new_code, c.new_name, c.share "  # noqa: S608 - registry
        f"FROM {_q(layer.table)} u JOIN admin_crosswalk c ON c.old_code = u.code AND c.old_scheme = u.scheme "
        "AND c.old_level = u.level WHERE u.id = ANY($1::int[]) AND u.valid_to IS NOT NULL "
        "ORDER BY c.share DESC, c.new_code", ids)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in found:
        out.setdefault(r["id"], []).append({"code": r["new_code"], "name": r["new_name"],
                                            "share": float(r["share"]) if r["share"] is not None else None})
    return out


def _label(layer: Layer, row: Any, lang: str) -> str:
    props = row["properties"] or {}
    if _has_sheet(layer) and props.get(SHEET_FIELD) is not None:
        sheet, parcel = props[SHEET_FIELD], props.get(PARCEL_FIELD)
        return f"Tờ {sheet} thửa {parcel}" if lang == "vi" else f"Sheet {sheet}, parcel {parcel}"
    return str(row["label"])


def to_feature(row: Any, lang: str = "vi", replaced_by: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    layer = get_layer(row["layer"])
    props = dict(row["properties"] or {})
    label = _label(layer, row, lang)
    if replaced_by:
        props["replaced_by"] = replaced_by
        now = ", ".join(str(u["name"]) for u in replaced_by)
        label = f"{label} (đã sáp nhập, nay thuộc {now})" if lang == "vi" else f"{label} (merged; now part of {now})"
    bbox = [row["xmin"], row["ymin"], row["xmax"], row["ymax"]]
    return {
        "type": "Feature", "id": row["id"],
        "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
        "bbox": bbox,
        "properties": {"layer": layer.id, "layer_title": layer.title(lang), "label": label,
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
    rows: list[Any] = []
    tier = "phrase"
    prefix_last = await last_word_is_cut(conn, parsed)
    for tier in _tiers(parsed):
        corrected = None
        if tier == "similar":
            corrected = await corrected_text(conn, parsed)
            if corrected is None:
                continue
        sql, params = search_sql(chosen, parsed, limit, tier, corrected, prefix_last)
        rows = await conn.fetch(sql, *params)
        if rows:
            break
    successors = await _successors(conn, rows)
    features = [to_feature(r, lang, successors.get(str(r["id"])) if r["layer"] == ADMIN_LAYER else None)
                for r in rows]
    bbox = None
    if features:
        bbox = [min(f["bbox"][0] for f in features), min(f["bbox"][1] for f in features),
                max(f["bbox"][2] for f in features), max(f["bbox"][3] for f in features)]
    return {"type": "FeatureCollection", "query": parsed.text,
            "parcel": ({"map_sheet": parsed.sheet_parcel[0], "parcel_no": parsed.sheet_parcel[1]}
                       if parsed.sheet_parcel else None),
            "layers": [x.id for x in chosen], "match": tier if features else None,
            "numberReturned": len(features), "bbox": bbox,
            "features": features}
