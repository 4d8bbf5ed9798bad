"""Vocabulary labels as people type them: `Sầu riêng`, `sau rieng`, `SẦU RIÊNG` and `durian` are one crop.

A field's codes (`LayerField.enum` / `items_enum`) get their Vietnamese labels from the lifecycle declared in the
registry (states) or from `layers/store/vocab.py` (`vocab.LABELS`: crops, pests, inspection results, ...).
`resolve(layer, f, text)` maps a code or a label — any case, with or without diacritics, `đ` as `d`, spaces,
hyphens and underscores alike — to the code; `allowed_text` lists the accepted values as `code (label)` for
messages. Used by the one validation (`layers.ingest.validation`: imports and API writes) and by `?field=value`
(`layers.query.selection.coerce_value`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from layers.catalog.registry import Layer, LayerField
from layers.store import vocab

_SEP = re.compile(r"[\s_\-]+")


def normalise(text: str) -> str:
    """Lower case, no diacritics (`đ` -> `d`), words joined by one space: the form labels are compared in."""
    t = unicodedata.normalize("NFD", str(text).strip().lower().replace("đ", "d"))
    t = "".join(ch for ch in t if unicodedata.category(ch) != "Mn")
    return _SEP.sub(" ", t).strip()


def labels(layer: Layer | None, f: LayerField) -> dict[str, str]:
    """code -> Vietnamese label for the field's vocabulary (empty when it has none)."""
    codes = f.enum if f.enum is not None else f.items_enum
    if codes is None:
        return {}
    if layer is not None and layer.lifecycle is not None and layer.lifecycle.field == f.name:
        return {s.code: s.label_vi for s in layer.lifecycle.states}
    return _vocab_labels(tuple(codes))


@lru_cache(maxsize=64)
def _vocab_labels(codes: tuple[str, ...]) -> dict[str, str]:
    wanted = set(codes)
    for table in vocab.LABELS:
        if wanted <= set(table):
            return {c: table[c] for c in codes}
    return {}


@lru_cache(maxsize=64)
def _index(codes: tuple[str, ...], pairs: tuple[tuple[str, str], ...]) -> dict[str, str | None]:
    """normalised code or label -> code (None: two codes share the form, so it is ambiguous)."""
    out: dict[str, str | None] = {}
    for code in codes:
        out[normalise(code)] = code
    for code, lab in pairs:
        key = normalise(lab)
        out[key] = code if out.get(key, code) == code else None
    return out


def resolve(layer: Layer | None, f: LayerField, text: str) -> str | None:
    """The code `text` stands for (itself when it is one), or None."""
    codes = f.enum if f.enum is not None else f.items_enum
    if codes is None:
        return None
    if text in codes:
        return text
    if not isinstance(text, str) or len(text) > 200:
        return None
    return _index(tuple(codes), tuple(labels(layer, f).items())).get(normalise(text))


def allowed_text(layer: Layer | None, f: LayerField, limit: int = 16) -> tuple[str, str]:
    """(vi, en) lists of the accepted values: `durian (Sầu riêng), coconut (Dừa), …`."""
    codes = list(f.enum if f.enum is not None else (f.items_enum or ()))
    labs = labels(layer, f)
    shown = [f"{c} ({labs[c]})" if c in labs else c for c in codes[:limit]]
    more = " …" if len(codes) > limit else ""
    return ", ".join(shown) + more, ", ".join(shown) + more


__all__ = ["allowed_text", "labels", "normalise", "resolve"]
