"""`datso` — the command line."""

from __future__ import annotations

import typer

from cli import areas, data, db, keys, maps, rasters, sample, tiles, trace, users
from layers.logging import configure_logging

app = typer.Typer(name="datso", help="datso (đất số): WebGIS data service for Vietnamese provinces.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(db.app, name="db")
app.add_typer(sample.app, name="sample")
app.add_typer(tiles.app, name="tiles")
app.add_typer(maps.app, name="map")
app.add_typer(keys.app, name="keys")
app.add_typer(users.app, name="users")
app.add_typer(trace.app, name="trace")
app.add_typer(areas.app, name="areas")
data.register(app)
rasters.register(app)    # datso raster add|list, datso stats


@app.callback()
def _setup() -> None:
    # every command logs through the one logging setup (layers/logging.py)
    configure_logging()


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, reload: bool = False) -> None:
    """Serve the API with uvicorn (TCP_NODELAY kept on with several workers)."""
    from api.server import run

    run(host=host, port=port, workers=workers, reload=reload)


if __name__ == "__main__":
    app()
