"""`datso raster add|list` (raster layers: COGs in DATSO_IMAGERY_DIR) and `datso stats` (zonal statistics of a
raster per feature of a layer selection, to CSV or GeoPackage)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from gis.errors import BilingualError
from layers.catalog.registry import UnknownLayer, get_layer
from layers.store import connect

app = typer.Typer(help="Raster layers (GeoTIFF/COG, any CRS incl. VN-2000).", no_args_is_help=True)
console = Console(stderr=True)


def _fail(exc: BilingualError | str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {exc.en if isinstance(exc, BilingualError) else exc}")
    raise typer.Exit(code)


@app.command("add")
def add(file: Path = typer.Argument(..., help="a GeoTIFF or COG, in any CRS (VN-2000 gets the official shift)"),
        name: str = typer.Option(..., "--name", "-n", help="the raster layer's name (a-z, 0-9, - and _)"),
        bands: str | None = typer.Option(None, "--bands", help="band names, comma separated (e.g. red,nir)"),
        force: bool = typer.Option(False, "--force", help="replace a raster of the same name")) -> None:
    """Register FILE as the raster layer NAME (written as a Cloud-Optimised GeoTIFF)."""
    from layers.store.rasters import add_raster

    if not file.is_file():
        _fail(f"{file}: no such file", 2)
    try:
        info = add_raster(file, name, force=force, band_names=bands.split(",") if bands else None)
    except BilingualError as exc:
        _fail(exc)
    console.print(f"{info.name}: {info.width}×{info.height}, {info.count} band(s) {', '.join(info.band_names)}, "
                  f"{info.crs}, COG at {info.path}")


@app.command("list")
def list_cmd() -> None:
    """The registered raster layers."""
    from layers.store.rasters import list_rasters

    for i in list_rasters():
        typer.echo(f"{i.name}\t{i.crs}\t{i.width}x{i.height}\t{','.join(i.band_names)}"
                   f"{'	synthetic' if i.synthetic else ''}")


def stats(layer: str = typer.Option(..., "--layer", "-l", help="the vector layer (collection id)"),
          raster: str = typer.Option(..., "--raster", "-r", help="the raster layer"),
          out: Path = typer.Option(..., "--out", "-o", help="file.csv or file.gpkg"),
          filter_: str | None = typer.Option(None, "--filter", help="CQL2 text, as the API's filter="),
          bbox: str | None = typer.Option(None, "--bbox", help="minx,miny,maxx,maxy (lon/lat)"),
          band: str | None = typer.Option(None, "--band", help="band index or name (default 1)"),
          expression: str | None = typer.Option(None, "--expression", help="band math, e.g. (b4-b3)/(b4+b3)"),
          max_features: int = typer.Option(100_000, "--max-features", help="refuse larger selections")) -> None:
    """Zonal statistics (exactextract, partial pixels) of RASTER for each feature of LAYER."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from layers.query.selection import parse_selection
    from layers.query.zonal import What, fetch_features, zonal
    from layers.store.rasters import open_raster
    from tiles.raster import parse_expression

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".gpkg"):
        _fail("--out: use a .csv or .gpkg file", 2)
    try:
        lay = get_layer(layer)
    except (UnknownLayer, KeyError):
        _fail(f"--layer: no layer '{layer}'", 2)
    try:
        info = open_raster(raster)
        if expression is not None:
            what = What(expression=parse_expression(info, expression))
        else:
            what = What(band=info.band_index(band) if band else 1)
        try:
            sel = parse_selection(lay, bbox=bbox, filter=filter_)
        except BilingualError as exc:
            _fail(f"--filter/--bbox: {exc.en}")
        ids, geoms, _ = fetch_features(connect.url("reader"), lay, None if sel.empty else sel, max_features)
        rows = zonal(info, ids, geoms, what)
    except BilingualError as exc:
        _fail(exc)
    frame = pd.DataFrame(rows, columns=["id", "count", "mean", "min", "max", "std", "p10", "p50", "p90"])
    frame.insert(1, "measure", what.label)
    if suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        gdf = gpd.GeoDataFrame(frame, geometry=list(geoms) if len(geoms) else shapely.points([]), crs=4326)
        gdf.to_file(out, layer=f"{lay.id}_{info.name}_stats", driver="GPKG", engine="pyogrio")
    console.print(f"{out}: {len(rows)} feature(s), {what.label} of {info.name}"
                  f"{' (synthetic imagery)' if info.synthetic else ''}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="raster")
    root.command("stats")(stats)
