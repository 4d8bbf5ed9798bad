"""`datso db ...`: the embedded cluster and migrations."""

from __future__ import annotations

from pathlib import Path

import typer
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console

from layers.settings import get_settings
from layers.store import backup as backup_mod
from layers.store import db as dbmod
from layers.store import pgcluster
from layers.store import roles as roles_mod

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
    if st.tcp_auth == "trust":
        console.print("[yellow]this cluster trusts every TCP connection from 127.0.0.1 (made before datso asked "
                      "for a password).[/yellow] To require scram-sha-256: set a password (ALTER ROLE postgres "
                      f"PASSWORD '...'), write it alone to {s.pg_password_file} (chmod 600), change the `host` "
                      "lines of pg_hba.conf from trust to scram-sha-256 and reload (docs/operations.md).")
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


def _progress(verb: str) -> backup_mod.Progress:
    def report(done: int, total: int, table: str) -> None:
        console.print(f"{verb} [{done}/{total}] {table}")
    return report


@app.command()
def backup(out: Path = typer.Option(..., "--out", help="archive to write (pg_dump custom format)"),
           db: str | None = typer.Option(None, "--db", help="database to back up (default: datso's)")) -> None:
    """Back up the database with pg_dump (custom format), table by table with progress."""
    s = get_settings()
    try:
        n = backup_mod.backup(s, s.dsn(db), out, _progress("dumped"))
    except backup_mod.BackupError as exc:
        _fail(str(exc))
        return
    console.print(f"backup written: {out} ({n} tables, {out.stat().st_size} bytes)")


@app.command()
def restore(archive: Path = typer.Argument(..., help="archive written by `datso db backup`"),
            db: str | None = typer.Option(None, "--db", help="NEW database to restore into (default: datso's "
                                                              "database, which then must not exist)"),
            force: bool = typer.Option(False, "--force", help="replace the database if it exists")) -> None:
    """Restore a backup into a new database (refuses an existing one unless --force)."""
    s = get_settings()
    db = db or str(conninfo_to_dict(s.dsn()).get("dbname") or s.db_name)
    try:
        n = backup_mod.restore(s, archive, db, force=force, progress=_progress("restored"))
    except backup_mod.BackupError as exc:
        _fail(str(exc))
        return
    console.print(f"restored {archive} into database {db!r} ({n} tables): {s.dsn(db)}")


@app.command()
def roles(create: bool = typer.Option(False, "--create", help="create the roles (or reset their passwords)"),
          db: str | None = typer.Option(None, "--db", help="database to grant on (default: datso's)"),
          prefix: str = typer.Option("datso", "--prefix", help="role names: PREFIX_reader, PREFIX_writer"),
          owner: bool = typer.Option(False, "--owner", help="also make PREFIX_owner and hand it every table")) -> None:
    """Least-privilege roles (opt-in): a reader and a writer that cannot alter tables; prints their URLs."""
    if not create:
        _fail("say --create to create the roles (nothing else is done without it)")
    s = get_settings()
    try:
        urls = roles_mod.create_roles(s.dsn(db), prefix=prefix, owner=owner)
    except roles_mod.RolesError as exc:
        _fail(str(exc))
        return
    print(f"DATABASE_URL={urls['writer']}")
    print(f"DATSO_DATABASE_READ_URL={urls['reader']}")
    if "owner" in urls:
        print(f"# migrations (datso db migrate): DATABASE_URL={urls['owner']}")
    console.print("passwords are shown once; require them with scram-sha-256 lines in pg_hba.conf "
                  "(docs/operations.md)")


replica_app = typer.Typer(help="A streaming read replica (hot standby) of the embedded cluster.",
                          no_args_is_help=True)
app.add_typer(replica_app, name="replica")


@replica_app.command("create")
def replica_create(data: Path = typer.Option(..., "--data", help="folder of the replica (its cluster goes in "
                                                                 "DATA/pg, like DATSO_DATA_DIR)"),
                   port: int = typer.Option(..., "--port", help="TCP port of the replica on 127.0.0.1"),
                   start_it: bool = typer.Option(True, "--start/--no-start", help="start it at once")) -> None:
    """Make a hot standby of the running embedded cluster with pg_basebackup -R and print its read URL."""
    s = get_settings()
    if not s.embedded:
        _fail("DATABASE_URL is set: make the replica of that server with pg_basebackup -R yourself "
              "(docs/operations.md, 'A streaming read replica')")
    if port == s.pg_port:
        _fail(f"--port {port} is the primary's port")
    replica = s.model_copy(update={"data_dir": data, "pg_port": port})
    try:
        pgcluster.make_replica(s, replica)
        if start_it:
            console.print(str(pgcluster.start(replica)))
    except pgcluster.ClusterError as exc:
        _fail(str(exc))
        return
    print(f"DATSO_DATABASE_READ_URL={replica.dsn()}")
    console.print(f"manage it with: DATSO_DATA_DIR={data} DATSO_PG_PORT={port} datso db start|stop|status")
