"""`datso import` and `datso export`: files in and out of the layers (thin: the work is in layers/)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from layers.store import connect

console = Console(stderr=True, soft_wrap=True)
MAX_SHOWN = 30


def import_cmd(
    file: Path = typer.Argument(..., help="Shapefile (.shp/.zip), GeoPackage, GeoJSON, KML or CSV"),
    layer: str = typer.Option(..., "--layer", "-l", help="target layer id, e.g. parcels"),
    crs: str | None = typer.Option(None, help="source CRS (overrides the file): vn2000:ben-tre, EPSG:9210, ..."),
    field_map: str | None = typer.Option(None, "--field-map", help="rename columns: so_to=map_sheet,..."),
    source_layer: str | None = typer.Option(None, "--source-layer", help="layer inside a GeoPackage/zip/KML"),
    encoding: str | None = typer.Option(None, help="text encoding: utf-8, cp1258, tcvn3 (default: .cpg/detect)"),
    swap_xy: bool | None = typer.Option(None, "--swap-xy/--no-swap-xy",
                                        help="X is northing (surveyors' convention); default: detect for CSV"),
    x_field: str | None = typer.Option(None, "--x-field", help="CSV column with X"),
    y_field: str | None = typer.Option(None, "--y-field", help="CSV column with Y"),
    wkt_field: str | None = typer.Option(None, "--wkt-field", help="CSV column with WKT geometry"),
    repair: bool = typer.Option(False, "--repair", help="repair invalid geometries (make_valid) with a warning"),
    register: bool = typer.Option(False, "--register", hidden=True,
                                  help="the default for registered layers (kept for older scripts)"),
    bulk: bool = typer.Option(False, "--bulk", help="BULK, for migrating legacy registers only: growing areas/"
                              "packing houses written as in the file (statuses, codes), bypassing the registration "
                              "workflow (drafts, minimum area, commune, province, overlaps); still validated and "
                              "audited. Without it these layers are registered as by the upload endpoint"),
    report: Path | None = typer.Option(None, "--report", help="write every issue to this CSV"),
    lang: str = typer.Option("vi", "--lang", help="vi | en"),
    user: str | None = typer.Option(None, "--user", help="actor recorded in the history (default: OS user)"),
    as_user: str | None = typer.Option(None, "--as", help="import as this datso user: their province scope "
                                                          "applies to every row, history records their name"),
    mode: str = typer.Option("insert", "--mode", help="insert (new rows only) | update | upsert existing rows by "
                             "the layer's business key (code, or its unique fields)"),
    decimal_separator: str | None = typer.Option(None, "--decimal-separator",
                                                 help="',' or '.': how the file writes decimals (1.250 is refused "
                                                      "as ambiguous without it)"),
) -> None:
    """Import a file into a layer: every row is checked; all rows are written in one transaction, or none.

    Growing areas and packing houses (layers with a registration) are registered as the upload endpoint does:
    new drafts without codes, with every registration check. --bulk writes them as in the file instead."""
    from layers.accounts.users import AccountError, principal_for
    from layers.ingest.importer import BULK_NOTE, ImportOptions, import_file

    opts = ImportOptions(crs=crs, field_map=field_map, source_layer=source_layer, encoding=encoding,
                         swap_xy=swap_xy, x_field=x_field, y_field=y_field, wkt_field=wkt_field, repair=repair,
                         lang=lang, report=report, bulk=bulk,
                         mode=mode, decimal_separator=decimal_separator)
    if user:
        opts.user = user
    vi = lang == "vi"
    if register and bulk:
        console.print(f"[red]{'lỗi' if vi else 'error'}:[/red] " + (
            "--register và --bulk loại trừ nhau" if vi else "--register and --bulk exclude each other"))
        raise typer.Exit(2)
    if as_user:
        try:
            opts.principal = principal_for(connect.url("writer"), as_user)
        except AccountError as exc:
            console.print(f"[red]{'lỗi' if vi else 'error'}:[/red] --as: {exc.message(lang)}")
            raise typer.Exit(1) from None
    result = import_file(file, layer, connect.url("writer"), opts)
    for note in result.notes:
        style = "bold yellow" if note == BULK_NOTE else "dim"
        console.print(f"[{style}]{note[0] if vi else note[1]}[/{style}]")
    for w in result.warnings[:MAX_SHOWN]:
        console.print(f"[yellow]{'cảnh báo' if vi else 'warning'}:[/yellow] {file.name}: {w.describe(lang)}")
    if not result.ok:
        for e in result.errors[:MAX_SHOWN]:
            console.print(f"[red]{'lỗi' if vi else 'error'}:[/red] {file.name}: {e.describe(lang)}")
        more = len(result.errors) - MAX_SHOWN
        if more > 0:
            console.print(f"... {more} {'lỗi khác' if vi else 'more errors'}")
        console.print(("Không ghi dòng nào." if vi else "Nothing was written.")
                      + (f" {'Báo cáo' if vi else 'Report'}: {report}" if report else ""))
        raise typer.Exit(1)
    msg = (f"Đã nhập {result.rows_written} dòng vào {layer} trong {result.seconds:.1f} s "
           f"({result.rate:,.0f} dòng/s)" if vi else
           f"imported {result.rows_written} rows into {layer} in {result.seconds:.1f} s ({result.rate:,.0f} rows/s)")
    if BULK_NOTE in result.notes:
        msg += " — nhập hàng loạt (--bulk), không qua đăng ký" if vi else " — bulk (--bulk), not registered"
    if mode != "insert":
        msg += (f"; {result.rows_updated} dòng cập nhật đối tượng đã có" if vi
                else f"; {result.rows_updated} updated existing features")
    print(msg)


def export_cmd(
    layer: str = typer.Option(..., "--layer", "-l", help="layer id, e.g. parcels"),
    fmt: str = typer.Option(..., "--format", "-f", help="gpkg | fgb | geojson | shp (a .zip or a folder) | csv | kml"),
    out: Path = typer.Option(..., "--out", "-o", help="output file (shp: .zip or a folder)"),
    crs: str | None = typer.Option(None, help="output CRS: EPSG:4326 (default), vn2000:ben-tre, EPSG:9210, ..."),
    where: list[str] = typer.Option([], "--where", help="field=value on a queryable field (repeatable)"),
    bbox: str | None = typer.Option(None, "--bbox", help="minLon,minLat,maxLon,maxLat"),
    public_only: bool = typer.Option(False, "--public-only", help="only the fields published to everyone"),
    lang: str = typer.Option("vi", "--lang", help="vi | en"),
) -> None:
    """Export a layer to a file, in any registry CRS (VN-2000 via the official transformation)."""
    from gis.io import DataFileError
    from layers.catalog.registry import UnknownLayer
    from layers.query.exporter import ExportError, export_layer

    try:
        res = export_layer(connect.url("reader"), layer, fmt, out, crs=crs, where=where, bbox=bbox,
                           public_only=public_only)
    except (ExportError, DataFileError) as exc:
        console.print(f"[red]{'lỗi' if lang == 'vi' else 'error'}:[/red] {exc.message(lang)}")
        raise typer.Exit(1) from None
    except UnknownLayer as exc:
        console.print(f"[red]{'lỗi' if lang == 'vi' else 'error'}:[/red] {exc}")
        raise typer.Exit(1) from None
    print(f"{res.rows} -> {res.path} ({res.crs}, {res.seconds:.1f} s)")


def register(app: typer.Typer) -> None:
    """Add the top-level `import` and `export` commands (`import` is a Python keyword)."""
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
