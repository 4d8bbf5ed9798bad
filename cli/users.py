"""`datso users …`: officers and admins with a province scope (their API keys: `datso keys …`)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table

from layers.accounts.principal import ROLES
from layers.accounts.users import AccountError, create_user, disable_user, list_users, new_key, update_user
from layers.store import connect

app = typer.Typer(help="Users: role (officer | admin), province/commune scope, password, API keys.",
                  no_args_is_help=True)
err = Console(stderr=True)


def _dsn(db: str | None) -> str:
    return connect.url("writer", dbname=db)   # users live on the primary


def _fail(exc: AccountError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc.message('en')} / {exc.message('vi')}")
    return typer.Exit(1)


@app.command()
def create(
    name: str = typer.Argument(..., help="user name, e.g. 'lan.nguyen'"),
    role: str = typer.Option(..., "--role", help=" | ".join(ROLES)),
    province: list[str] = typer.Option([], "--province", help="2-digit province code (2025 scheme), repeatable"),
    commune: list[str] = typer.Option([], "--commune", help="5-digit commune code narrowing the scope, repeatable"),
    national: bool = typer.Option(False, "--national", help="admins only: no province limit"),
    display_name: str | None = typer.Option(None, "--display-name", help="full name shown on the officer page"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read a sign-in password from stdin "
                                                                        "(first line); else keys only"),
    db: str | None = typer.Option(None, "--db", help="database name (default: settings)"),
) -> None:
    """Create a user and their first API key. The key is printed ALONE on the LAST line of stdout
    (`KEY=$(datso users create … | tail -1)`); only its hash is stored."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        created = create_user(_dsn(db), name, role, province, commune, national, display_name, password)
    except AccountError as exc:
        raise _fail(exc) from None
    u = created.user
    typer.echo(f"user {u.name} ({u.role}, {u.scope_text('en')}) created"
               + ("; sign-in password set" if u.has_password else "; no password (API keys only)"))
    typer.echo(f"API key '{created.key_name}' (shown once; only its hash is stored):")
    typer.echo(created.key)


@app.command("list")
def list_(db: str | None = typer.Option(None, "--db")) -> None:
    """List users: name, role, scope, status (never secrets)."""
    t = Table("name", "role", "scope", "status", "keys", "password", "display name")
    for u in list_users(_dsn(db)):
        t.add_row(u.name, u.role, u.scope_text("en"), u.status, str(u.keys), "yes" if u.has_password else "no",
                  u.display_name or "")
    out = Console()
    if not out.is_terminal:      # piped (grep, scripts): names are not cut at 80 columns
        out = Console(width=250)
    out.print(t)


@app.command()
def disable(name: str = typer.Argument(..., help="user name"), db: str | None = typer.Option(None, "--db")) -> None:
    """Disable a user: every key and session of theirs stops working at once."""
    try:
        disable_user(_dsn(db), name)
    except AccountError as exc:
        raise _fail(exc) from None
    err.print(f"User '{name}' disabled; their keys are revoked and their sessions ended.")


@app.command()
def enable(name: str = typer.Argument(..., help="user name"), db: str | None = typer.Option(None, "--db")) -> None:
    """Enable a disabled user again (their old keys stay revoked: make a new one with `datso users key`)."""
    try:
        update_user(_dsn(db), name, disabled=False)
    except AccountError as exc:
        raise _fail(exc) from None
    err.print(f"User '{name}' enabled.")


@app.command()
def key(name: str = typer.Argument(..., help="user name"), db: str | None = typer.Option(None, "--db")) -> None:
    """A new API key for a user, printed alone on the last line (shown once)."""
    try:
        key_name, secret = new_key(_dsn(db), name)
    except AccountError as exc:
        raise _fail(exc) from None
    typer.echo(f"API key '{key_name}' for {name} (shown once):")
    typer.echo(secret)


@app.command()
def password(name: str = typer.Argument(..., help="user name"),
             db: str | None = typer.Option(None, "--db")) -> None:
    """Set a user's sign-in password, read from stdin (first line); their sessions end."""
    try:
        update_user(_dsn(db), name, password=sys.stdin.readline().rstrip("\r\n"))
    except AccountError as exc:
        raise _fail(exc) from None
    err.print(f"Password of '{name}' set.")
