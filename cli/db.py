"""`datso db ...`: the embedded cluster and migrations."""

from __future__ import annotations

import typer
from rich.console import Console

from layers.settings import get_settings
from layers.store import db as dbmod
from layers.store import pgcluster

app = typer.Typer(help="Embedded PostgreSQL/PostGIS cluster and migrations.", no_args_is_help=True)
console = Console(stderr=True)


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(1)


@app.command()
def start() -> None:
    """Start the project-local cluster (creates it on first use). No-op when DATABASE_URL is set."""
    s = get_settings()
    if not s.embedded:
        pgcluster.wait_ready(s.dsn())
        console.print(f"DATABASE_URL is set: using {s.dsn()} (no local cluster started)")
        return
    try:
        st = pgcluster.start(s)
    except pgcluster.ClusterError as exc:
        _fail(str(exc))
        return
    console.print(str(st))


@app.command()
def stop() -> None:
    """Stop the project-local cluster."""
    s = get_settings()
    if not s.embedded:
        _fail("DATABASE_URL is set: there is no local cluster to stop")
    console.print(str(pgcluster.stop(s)))


@app.command()
def status() -> None:
    """Say whether the local cluster is running (exit 1 when it is not)."""
    s = get_settings()
    if not s.embedded:
        console.print(f"external database: {s.dsn()}")
        return
    st = pgcluster.status(s)
    print(st)
    if not st.running:
        raise typer.Exit(1)


@app.command()
def url() -> None:
    """Print the database URL datso uses."""
    print(get_settings().dsn())


@app.command()
def migrate(revision: str = typer.Argument("head", help="Alembic revision to upgrade to")) -> None:
    """Apply Alembic migrations (creates the database and PostGIS extension if needed)."""
    s = get_settings()
    if s.embedded:
        pgcluster.ensure_database(s, s.db_name)
    dbmod.migrate(s, revision=revision)
    console.print(f"migrated to {revision}")


@app.command()
def downgrade(revision: str = typer.Argument("base")) -> None:
    """Downgrade the schema (base = drop everything datso created)."""
    dbmod.downgrade(get_settings(), revision=revision)
    console.print(f"downgraded to {revision}")


@app.command("advance-auctions")
def advance_auctions() -> None:
    """Write the auction statuses the dates imply now (announced -> registration open -> closed); run daily,
    e.g. from a systemd timer or cron, so tiles and the features API agree with the dates."""
    import datetime as dt

    from layers.query.auctions import advance_statuses
    from layers.store import connect

    with connect.connect("writer", settings=get_settings()) as conn, conn.cursor() as cur:
        n = advance_statuses(cur, dt.datetime.now(dt.UTC))
    console.print(f"{n} auction plot(s) moved to the status their dates imply")
