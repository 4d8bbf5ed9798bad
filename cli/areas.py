"""`datso areas ...`: growing areas and packing houses (registration lifecycle jobs)."""

from __future__ import annotations

import typer

from layers.store import connect

app = typer.Typer(help="Growing areas and packing houses: lifecycle jobs.", no_args_is_help=True)


@app.command()
def expire(db: str | None = typer.Option(None, "--db", help="database name (default: settings)")) -> None:
    """Move active/suspended codes past their valid_to to expired (audited). The API also runs it hourly."""
    from layers.ingest.registration import expire_all

    for layer, n in expire_all(connect.url("writer", dbname=db)).items():
        typer.echo(f"{layer}\t{n}")
