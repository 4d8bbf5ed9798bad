"""`datso keys ...`: API keys for officers and admins (OGC API – Features Part 4 writes). Every key belongs to a
user (`datso users …`): `--user NAME` adds a key to that user; without it the key's user is the one of the
same name, created when missing (admin: national; officer: every province in the database)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from layers.accounts.auth import ROLES, ApiKeyError, create_key, list_keys, revoke_key
from layers.store import connect

app = typer.Typer(help="API keys for editing over HTTP (stored as SHA-256 hashes).", no_args_is_help=True)
err = Console(stderr=True)


def _dsn(db: str | None) -> str:
    return connect.url("writer", dbname=db)   # keys live on the primary (created, listed, revoked)


@app.command()
def create(name: str = typer.Option(..., "--name", help="the key's name, e.g. 'nguyen.van.a'"),
           role: str | None = typer.Option(None, "--role", help=" | ".join(ROLES) + " (with --user: theirs)"),
           user: str | None = typer.Option(None, "--user", help="an existing user (datso users create) to give "
                                                                "this key to"),
           db: str | None = typer.Option(None, "--db", help="database name (default: settings)")) -> None:
    """Create a key and print its secret ONCE (only a hash is stored)."""
    try:
        secret = create_key(_dsn(db), name, role, user=user)
    except ApiKeyError as exc:
        err.print(f"[red]error:[/red] {exc.message('en')} / {exc.message('vi')}")
        raise typer.Exit(1) from None
    err.print(f"Key '{name}' ({user or name}) created. Store the secret now; it cannot be shown again:")
    typer.echo(secret)


@app.command("list")
def list_(db: str | None = typer.Option(None, "--db")) -> None:
    """List keys (names, roles, dates; never secrets)."""
    t = Table("name", "user", "role", "created", "revoked")
    for k in list_keys(_dsn(db)):
        t.add_row(k.name, k.user or "", k.role, f"{k.created_at:%Y-%m-%d %H:%M}" if k.created_at else "",
                  f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "")
    out = Console()
    if not out.is_terminal:      # piped (grep, scripts): names are not cut at 80 columns
        out = Console(width=250)
    out.print(t)


@app.command()
def revoke(name: str = typer.Argument(..., help="key name"), db: str | None = typer.Option(None, "--db")) -> None:
    """Revoke a key by name (it stops working immediately)."""
    try:
        revoke_key(_dsn(db), name)
    except ApiKeyError as exc:
        err.print(f"[red]error:[/red] {exc.message('en')} / {exc.message('vi')}")
        raise typer.Exit(1) from None
    err.print(f"Key '{name}' revoked.")
