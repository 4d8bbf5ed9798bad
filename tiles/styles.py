"""MapLibre GL style documents from the registry's default `style` of each layer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layers.catalog.registry import Layer
from tiles.tilejson import Bounds

SOURCE = "datso"
ORDER = {"fill": 0, "line": 1, "circle": 2}


def colour_expr(style: dict[str, Any]) -> Any:
    """A `match` on the style's `by` field, or the default colour."""
    default = style.get("default", "#607d8b")
    colours: dict[str, str] = style.get("colours") or {}
    by = style.get("by")
    if not by or not colours:
        return default
    expr: list[Any] = ["match", ["get", by]]
    for value, colour in colours.items():
        expr += [value, colour]
    return expr + [default]


def style_layers(layer: Layer, lang: str) -> list[dict[str, Any]]:
    st = layer.style or {}
    kind = st.get("kind", "fill")
    colour = colour_expr(st)
    common = {"source": SOURCE, "source-layer": layer.id, "minzoom": layer.minzoom,
              "metadata": {"datso:title": layer.title(lang)}}
    if kind == "fill":
        return [
            {"id": f"{layer.id}-fill", "type": "fill", **common,
             "paint": {"fill-color": colour, "fill-opacity": 0.45}},
            {"id": f"{layer.id}-outline", "type": "line", **common,
             "paint": {"line-color": colour, "line-width": ["interpolate", ["linear"], ["zoom"], 10, 0.3, 16, 1.2]}},
        ]
    if kind == "line":
        return [{"id": f"{layer.id}-line", "type": "line", **common,
                 "paint": {"line-color": colour, "line-width": 1.5}}]
    return [{"id": f"{layer.id}-circle", "type": "circle", **common,
             "paint": {"circle-color": colour, "circle-stroke-color": "#ffffff", "circle-stroke-width": 1,
                       "circle-radius": ["interpolate", ["linear"], ["zoom"], 8, 2, 16, 6]}}]


def style(layers: Sequence[Layer], tilejson_url: str, bounds: Bounds | None, lang: str) -> dict[str, Any]:
    ordered = sorted(layers, key=lambda la: ORDER.get((la.style or {}).get("kind", "fill"), 0))
    doc: dict[str, Any] = {
        "version": 8,
        "name": " + ".join(la.title(lang) for la in layers),
        "sources": {SOURCE: {"type": "vector", "url": tilejson_url}},
        "layers": [{"id": "background", "type": "background", "paint": {"background-color": "#f4f1ea"}}]
        + [sl for la in ordered for sl in style_layers(la, lang)],
    }
    if bounds is not None:
        doc["center"] = [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2]
        doc["zoom"] = 11
    return doc
