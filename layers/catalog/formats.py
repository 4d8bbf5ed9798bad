"""Values as people read them: the one formatting module of every face (Folium popups, HTML item pages).

Each field of the registry declares how its values are shown (`LayerField.format`; the registry fills it from
the column type when the entry says nothing): `vnd` (1.250.000.000 ₫), `date` (dd/mm/yyyy, timestamps in
Vietnam time), `land_use` (code – name from Circular 08/2024), `crop` (the Vietnamese crop name), `label`
(the state/code label: lifecycles of the registry and `CODE_LABELS`), `boolean`, `number` (1.234,5 in
Vietnamese), `integer`, `list` and `text`. Nothing here looks at a field's name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from layers.catalog.registry import LAYERS, LayerField
from layers.store import vocab

VN_TZ = dt.timezone(dt.timedelta(hours=7))

# Labels of codes that are not lifecycle states (those are declared with their lifecycle in the registry).
CODE_LABELS: dict[str, tuple[str, str]] = {
    "province": ("Tỉnh", "Province"), "district": ("Huyện", "District"), "commune": ("Xã", "Commune"),
    "long_term": ("Lâu dài", "Long-term"),
}


@lru_cache(maxsize=1)
def _labels() -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for layer in LAYERS.values():
        if layer.lifecycle is not None:
            out.update({s.code: (s.label_vi, s.label_en) for s in layer.lifecycle.states})
    out.update(CODE_LABELS)
    for labels in (vocab.INSPECTION_RESULTS, vocab.PESTS, vocab.SEVERITIES):   # record vocabularies (issue 11)
        out.update({c: (vi, c.replace("_", " ").capitalize()) for c, vi in labels.items()})
    return out


def label(code: str | None, lang: str = "vi") -> str:
    """The label of a state or code in `lang` (the code itself when it has none)."""
    if code is None:
        return ""
    pair = _labels().get(code)
    return code if pair is None else pair[0 if lang == "vi" else 1]


def format_vnd(value: Any) -> str:
    """1250000000 -> '1.250.000.000 ₫'."""
    n = int(Decimal(str(value)))
    return f"{n:,}".replace(",", ".") + " ₫"


def format_number(value: Any, decimals: int = 2) -> str:
    """1234.5 -> '1.234,5' (Vietnamese separators)."""
    d = Decimal(str(value))
    text = f"{d:,.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{d:,.0f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def format_date(value: Any) -> str:
    """ISO date or timestamp -> dd/mm/yyyy (timestamps in Vietnam time, UTC+7)."""
    text = str(value)
    try:
        if len(text) == 10:
            d = dt.date.fromisoformat(text)
            return d.strftime("%d/%m/%Y")
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if t.tzinfo is not None:
            t = t.astimezone(VN_TZ)
        return t.strftime("%d/%m/%Y")
    except (ValueError, OverflowError):
        # what PostgreSQL can store but Python cannot read ("0044-03-15 BC", year 294276): shown as stored
        return text


def _text(f: LayerField, value: Any, lang: str) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _land_use(f: LayerField, value: Any, lang: str) -> str:
    if f.type != "array":
        return f"{value} – {vocab.LAND_USE_CODES.get(str(value), '')}".rstrip(" –")
    if isinstance(value, list):
        return "; ".join(f"{v} – {vocab.LAND_USE_CODES.get(v, '')}" for v in value)
    return _text(f, value, lang)


FORMATTERS: dict[str, Callable[[LayerField, Any, str], str]] = {
    "vnd": lambda f, v, lang: format_vnd(v),
    "date": lambda f, v, lang: format_date(v),
    "land_use": _land_use,
    "crop": lambda f, v, lang: vocab.CROPS.get(str(v), str(v)) if lang == "vi" else str(v),
    "label": lambda f, v, lang: label(str(v), lang),
    "boolean": lambda f, v, lang: ("có" if v else "không") if lang == "vi" else ("yes" if v else "no"),
    "number": lambda f, v, lang: format_number(v) if lang == "vi" else f"{Decimal(str(v)):,}",
    "integer": lambda f, v, lang: str(v),
    "list": _text,
    "text": _text,
}


def format_value(f: LayerField, value: Any, lang: str = "vi") -> str:
    """`value` of field `f` as text in `lang`, the way the field's declared `format` says."""
    if value is None or value == [] or value == "":
        return ""
    return FORMATTERS[f.format or "text"](f, value, lang)
