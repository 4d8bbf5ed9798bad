"""`datso trace …`: traceability from the command line. `datso trace capture FILE` stores an EPCIS 2.0 document
exactly as POST /epcis/capture does (all events or none), as the operator or `--as` a user (their scope)."""

from __future__ import annotations

import getpass
from pathlib import Path

import orjson
import typer
from rich.console import Console

from layers.accounts.users import AccountError, principal_for
from layers.ingest import epcis
from layers.settings import get_api_settings
from layers.store import connect

app = typer.Typer(help="Traceability: capture EPCIS 2.0 documents.", no_args_is_help=True)
err = Console(stderr=True)


@app.command()
def capture(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="an EPCIS 2.0 JSON/JSON-LD "
                                                                                   "document (EPCISDocument)"),
    as_user: str | None = typer.Option(None, "--as", help="capture as this user (their role and scope apply)"),
    lang: str = typer.Option("en", "--lang", help="language of the messages: vi | en"),
    db: str | None = typer.Option(None, "--db", help="database name (default: settings)"),
) -> None:
    """Check every event and store them all, or none: each refused event is printed with its field."""
    dsn = connect.url("writer", dbname=db)
    a = get_api_settings()
    limits = epcis.CaptureLimits(a.epcis_max_document_bytes, a.epcis_max_events, a.epcis_max_depth, a.epcis_max_list)
    if file.stat().st_size > limits.max_bytes:
        err.print(f"[red]error:[/red] {file}: larger than {limits.max_bytes} bytes (DATSO_EPCIS_MAX_DOCUMENT_BYTES)")
        raise typer.Exit(1)
    try:
        sender = principal_for(dsn, as_user) if as_user else None
    except AccountError as exc:
        err.print(f"[red]error:[/red] {exc.message(lang)}")
        raise typer.Exit(1) from None
    actor = as_user or f"cli:{getpass.getuser()}"
    try:
        result = epcis.capture(dsn, file.read_bytes(), sender, limits, actor=actor)
    except epcis.CaptureRefused as exc:
        err.print(f"[red]refused[/red] ({exc.status}): {exc.message(lang)}")
        for p in exc.problems:
            where = f"event {p.index}" if p.index is not None else "document"
            err.print(f"  {where}" + (f" ({p.event_id})" if p.event_id else "") + f" {p.field}: "
                      + (p.vi if lang == "vi" else p.en), markup=False, highlight=False)
        raise typer.Exit(1) from None
    typer.echo(orjson.dumps(result.as_dict()).decode())
    err.print(f"{result.stored} event(s) stored, {result.duplicates} already captured"
              + (f", {len(result.lots_created)} new lot(s)" if result.lots_created else ""))
