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
from dataclasses import replace
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
    **vocab.PRICE_AREA_KINDS,
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


def format_vnd(value: Any, lang: str = "vi", unit: str | None = None) -> str:
    """1250000000 -> '1.250.000.000 ₫' (English: '1,250,000,000 VND'); `unit` replaces the currency sign."""
    n = int(Decimal(str(value)))
    if lang == "vi":
        return f"{n:,}".replace(",", ".") + " " + (unit or "₫")
    return f"{n:,} " + (unit or "VND")


def format_number(value: Any, decimals: int = 2, lang: str = "vi") -> str:
    """1234.5 -> '1.234,5' (Vietnamese separators; English: '1,234.5')."""
    d = Decimal(str(value))
    text = f"{d:,.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{d:,.0f}"
    if lang != "vi":
        return text
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def unit_of(f: LayerField, lang: str) -> str | None:
    return f.unit if lang == "vi" else (f.unit_en or f.unit)


def display_title(f: LayerField, lang: str = "vi") -> str:
    """The field's title where its values carry their unit: 'Diện tích', not 'Diện tích (m²)' above '1.234 m²'
    (a `vnd` field's values carry ₫ / VND unless it declares another unit)."""
    title = f.title_vi if lang == "vi" else f.title_en
    unit = unit_of(f, lang) or (("₫" if lang == "vi" else "VND") if f.format == "vnd" else None)
    suffix = f" ({unit})" if unit else ""
    return title[: -len(suffix)] if suffix and title.endswith(suffix) else title


def format_date(value: Any, lang: str = "vi") -> str:
    """ISO date or timestamp -> dd/mm/yyyy (English: 5 Nov 2026; timestamps in Vietnam time, UTC+7)."""
    text = str(value)
    try:
        if len(text) == 10:
            d = dt.date.fromisoformat(text)
        else:
            t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if t.tzinfo is not None:
                t = t.astimezone(VN_TZ)
            d = t.date()
        return d.strftime("%d/%m/%Y") if lang == "vi" else f"{d.day} {d.strftime('%b %Y')}"
    except (ValueError, OverflowError):
        # what PostgreSQL can store but Python cannot read ("0044-03-15 BC", year 294276): shown as stored
        return text


def _text(f: LayerField, value: Any, lang: str) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def land_use_name(code: str, lang: str = "vi") -> str:
    """The Circular 08/2024 name of a land-use code in `lang` ('' for an unknown code)."""
    return (vocab.LAND_USE_CODES if lang == "vi" else vocab.LAND_USE_NAMES_EN).get(code, "")


def _land_use(f: LayerField, value: Any, lang: str) -> str:
    if f.type != "array":
        return f"{value} – {land_use_name(str(value), lang)}".rstrip(" –")
    if isinstance(value, list):
        return "; ".join(f"{v} – {land_use_name(str(v), lang)}".rstrip(" –") for v in value)
    return _text(f, value, lang)


def _ref(f: LayerField, value: Any, lang: str) -> str:
    """Referenced features as their declared fields say ('thửa 118, tờ 28'); ids alone are never shown: an
    unresolved value is counted ('2 đối tượng')."""
    assert f.ref is not None
    template = f.ref.template_vi if lang == "vi" else f.ref.template_en
    items = value if isinstance(value, list) else [value]
    shown = [template.format(**v) for v in items if isinstance(v, dict)]
    if shown:
        return "; ".join(shown)
    return f"{len(items)} đối tượng" if lang == "vi" else f"{len(items)} feature{'s' if len(items) != 1 else ''}"


def _with_unit(text: str, unit: str | None) -> str:
    if not unit:
        return text
    return text + unit if unit == "%" else f"{text} {unit}"


def _number(f: LayerField, v: Any, lang: str) -> str:
    return _with_unit(format_number(v, lang=lang), unit_of(f, lang))


def _integer(f: LayerField, v: Any, lang: str) -> str:
    return _with_unit(str(v), unit_of(f, lang))


FORMATTERS: dict[str, Callable[[LayerField, Any, str], str]] = {
    "vnd": lambda f, v, lang: format_vnd(v, lang, unit_of(f, lang)),
    "date": lambda f, v, lang: format_date(v, lang),
    "land_use": _land_use,
    "crop": lambda f, v, lang: vocab.CROPS.get(str(v), str(v)) if lang == "vi"
    else str(v).replace("_", " "),      # the codes are English words: dragon_fruit -> dragon fruit
    "label": lambda f, v, lang: label(str(v), lang),
    "boolean": lambda f, v, lang: ("có" if v else "không") if lang == "vi" else ("yes" if v else "no"),
    "number": _number,
    "integer": _integer,
    "list": _text,
    "text": _text,
    "ref": _ref,
}


def format_value(f: LayerField, value: Any, lang: str = "vi") -> str:
    """`value` of field `f` as text in `lang`, the way the field's declared `format` says."""
    if value is None or value == [] or value == "":
        return ""
    return FORMATTERS[f.format or "text"](f, value, lang)


def readable_title(f: LayerField, lang: str = "vi") -> str:
    """A field's column title in a readable table (CSV `labels=true`): its title in `lang`, unit in brackets."""
    return f.title_vi if lang == "vi" else f.title_en


def readable_formatter(f: LayerField, lang: str = "vi") -> Callable[[Any], str]:
    """How values of `f` are written in a readable table (CSV `labels=true`): as the field declares (labels,
    names, dates) without the unit (the title carries it), arrays as 'a; b'. One function per field, made once
    and applied to every row."""
    bare = replace(f, unit=None, unit_en=None)
    if f.format == "vnd":
        return lambda v: "" if v is None else format_number(v, 0, lang)
    listed = f.format in ("list", "text")

    def text(value: Any) -> str:
        if listed and isinstance(value, list):
            return "; ".join(str(v) for v in value)
        return format_value(bare, value, lang)
    return text

