"""`datso tiles ...`: seed tiles into a PMTiles/MBTiles archive."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from layers.catalog.registry import LAYERS, UnknownLayer, get_layer
from layers.store import connect

app = typer.Typer(help="Vector tiles: seed a PMTiles/MBTiles archive.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def seed(
    out: Path = typer.Option(..., "--out", help="file.pmtiles or file.mbtiles"),
    layers: str = typer.Option(",".join(LAYERS), "--layers", help="layer ids, comma-separated"),
    zooms: str = typer.Option("8-16", "--zooms", help="zoom range, e.g. 8-16"),
    bbox: str | None = typer.Option(None, "--bbox", help="west,south,east,north (degrees); default: the data"),
    workers: int = typer.Option(4, "--workers", min=1, max=32, help="database connections"),
) -> None:
    """Build the tiles of LAYERS over ZOOMS into one archive (the same bytes the server serves)."""
    from layers.query.selection import QueryError
    from tiles.seed import SeedError, parse_bbox, parse_zooms
    from tiles.seed import seed as run_seed

    try:
        chosen = [get_layer(i.strip()) for i in layers.split(",") if i.strip()]
        if not chosen:
            raise SeedError("--layers is empty")
        zr = parse_zooms(zooms)
        box = parse_bbox(bbox) if bbox else None
    except UnknownLayer as exc:
        console.print(f"[red]--layers: {exc}[/red]")
        raise typer.Exit(2) from None
    except (SeedError, QueryError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    dsn = connect.url("reader")
    with Progress(TextColumn("[bold]seeding[/bold]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task("tiles", total=None)
        try:
            report = asyncio.run(run_seed(dsn, chosen, zr, out, box, workers=workers,
                                          progress=lambda n: bar.advance(task, n),
                                          total=lambda n: bar.update(task, total=n)))
        except SeedError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    console.print(f"{report.path}: {report.written} tiles written of {report.tiles} visited, "
                  f"{report.bytes / 1e6:.1f} MB, largest {report.largest / 1e3:.1f} kB (gzip)")
