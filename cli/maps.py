"""`datso map export`: a self-contained Folium HTML map of a layer or a filtered selection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from layers.catalog.registry import LAYERS, UnknownLayer, get_layer
from layers.maps.folium_export import OfflineAssetsMissing, build_map
from layers.maps.maps import build_selection, context_boundaries, select_features
from layers.query.cql2 import CqlError
from layers.query.exporter import ExportError
from layers.query.selection import parse_where
from layers.store.connect import connect_async

app = typer.Typer(help="Web maps: self-contained Folium (Leaflet) HTML exports.", no_args_is_help=True)
console = Console(stderr=True)


async def _select(layer_id: str, query: dict[str, str]) -> tuple[dict[str, Any], Any, str, dict[str, Any]]:
    layer = get_layer(layer_id)
    sel = build_selection(layer, query)
    conn = await connect_async("reader")
    try:
        fc, plan = await select_features(conn, sel)
        boundaries = await context_boundaries(conn)
    finally:
        await conn.close()
    return fc, plan, sel.description(), boundaries


@app.command("export")
def export(
    layer: str = typer.Option(..., "--layer", "-l", help=f"layer id: {', '.join(LAYERS)}"),
    out: Path = typer.Option(..., "--out", "-o", help="the HTML file to write"),
    filter_: str | None = typer.Option(None, "--filter", help="CQL2 text, e.g. \"status = 'sold' AND area_m2 > 500\""),
    filter_lang: str = typer.Option("cql2-text", "--filter-lang", help="cql2-text or cql2-json"),
    bbox: str | None = typer.Option(None, "--bbox", help="minlon,minlat,maxlon,maxlat (WGS84)"),
    datetime_: str | None = typer.Option(None, "--datetime", help="an instant or an interval a/b (.. = open)"),
    where: list[str] = typer.Option([], "--where", help="queryable=value equality, repeatable (status=sold)"),
    offline: bool = typer.Option(False, "--offline", help="inline Leaflet and every asset: works with no network"),
    lang: str = typer.Option("vi", "--lang", help="vi or en"),
    basemap_url: str | None = typer.Option(None, "--basemap-url", help="an XYZ tile URL (ignored with --offline)"),
    raster: str | None = typer.Option(None, "--raster", help="a raster layer drawn under the features (an embedded "
                                      "PNG overlay: works offline)"),
    raster_expression: str | None = typer.Option(None, "--raster-expression",
                                                 help="band math for --raster, e.g. (b4-b3)/(b4+b3) (NDVI, RdYlGn)"),
) -> None:
    """Export LAYER (optionally filtered) as one HTML file: styled, with popups, legend and layer control."""
    if lang not in ("vi", "en"):
        console.print(f"[red]error:[/red] --lang must be vi or en, not {lang!r}")
        raise typer.Exit(2)
    try:
        get_layer(layer)
    except UnknownLayer as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        query = parse_where(where)
    except CqlError as exc:
        console.print(f"[red]error:[/red] {exc.message(lang)}")
        raise typer.Exit(2) from None
    if filter_:
        query["filter"], query["filter-lang"] = filter_, filter_lang
    if bbox:
        query["bbox"] = bbox
    if datetime_:
        query["datetime"] = datetime_
    try:
        fc, plan, description, boundaries = asyncio.run(_select(layer, query))
    except (ExportError, CqlError) as exc:
        console.print(f"[red]error:[/red] {exc.message(lang)}")
        raise typer.Exit(2) from None
    overlays = _raster_overlays(raster, raster_expression, lang, fc) if raster else None
    try:
        html = build_map(get_layer(layer), fc, lang=lang, offline=offline, basemap_url=basemap_url,
                         subtitle=description, note=plan.note_vi if lang == "vi" else plan.note_en,
                         boundaries=boundaries, compact=plan.compact, overlays=overlays)
    except OfflineAssetsMissing as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    note = f" ({plan.note_en})" if plan.note_en else ""
    console.print(f"{out}: {len(fc['features']):,} features, {len(html) / 1e6:.2f} MB"
                  f"{', offline' if offline else ''}{note}")


def _raster_overlays(name: str, expression: str | None, lang: str, fc: dict[str, Any]) -> list[dict[str, Any]]:
    """The raster as one embedded PNG over the exported features' extent (an HTML file has no tile server)."""
    from gis.errors import BilingualError
    from layers.maps.folium_export import bounds_of
    from tiles.raster import export_overlay

    b = bounds_of(fc)
    box = (b[0][1], b[0][0], b[1][1], b[1][0]) if b else None
    try:
        return [export_overlay(name, expression, lang, bbox=box)]
    except BilingualError as exc:
        console.print(f"[red]error:[/red] --raster: {exc.message(lang)}")
        raise typer.Exit(2) from None


@app.command("sample-imagery")
def sample_imagery(
    out: Path | None = typer.Option(None, "--out", "-o",
                                    help="the COG to write (default: the raster layer sample_s2 in DATSO_IMAGERY_DIR, "
                                         "as `datso sample load` registers it; the file name is the layer name)"),
    bbox: str | None = typer.Option(None, "--bbox", help="minlon,minlat,maxlon,maxlat (default: the province)"),
    width: int | None = typer.Option(None, help="pixels across (default: 30 m pixels)"),
    seed: int = typer.Option(7, help="noise seed (the same seed gives the same image)"),
) -> None:
    """Write the synthetic blue/green/red/NIR image of the sample province (the one `datso sample load` makes:
    NDVI follows the land use) as a Cloud-Optimised GeoTIFF, optionally over another box or at another size."""
    from layers.query.selection import parse_bbox
    from layers.settings import ImagerySettings, get_imagery_settings
    from layers.store import connect
    from layers.store.rasters import NAME, RasterError
    from sample_data.imagery import SAMPLE_RASTER, register_sample_s2

    box: tuple[float, float, float, float] | None = None
    if bbox:
        try:
            b = parse_bbox(bbox)
        except CqlError as exc:
            console.print(f"[red]error:[/red] --bbox: {exc.en}")
            raise typer.Exit(2) from None
        box = (b[0], b[1], b[2], b[3])
    if width is not None and not 16 <= width <= 20000:
        console.print("[red]error:[/red] --width must be between 16 and 20000")
        raise typer.Exit(2)
    if out is not None and (out.suffix != ".tif" or not NAME.match(out.stem)):
        console.print("[red]error:[/red] --out must be NAME.tif (NAME: lower-case letters, digits, - and _)")
        raise typer.Exit(2)
    settings = get_imagery_settings() if out is None else ImagerySettings(imagery_dir=out.parent)
    try:
        info = register_sample_s2(connect.url("reader"), seed=seed, settings=settings,
                                  name=SAMPLE_RASTER if out is None else out.stem, width=width, bbox=box)
    except ValueError as exc:          # no sample province in the database
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    except RasterError as exc:
        console.print(f"[red]error:[/red] {exc.en}")
        raise typer.Exit(1) from None
    console.print(f"{out or info.path}: synthetic blue/green/red/nir image ({info.width}x{info.height}, "
                  f"{info.crs}) over {', '.join(f'{v:.4f}' for v in info.bounds)}; served as /rasters/{info.name} "
                  f"when DATSO_IMAGERY_DIR={settings.imagery_dir}")
