"""`datso sample load`: the synthetic sample province."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from layers.settings import get_settings
from layers.store import connect
from sample_data.generate import NEW_PROVINCE, SIZES, load_sample

app = typer.Typer(help="Synthetic sample province (Bến Tre / Trà Vinh / Vĩnh Long geography).",
                  no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def load(
    size: str = typer.Option("small", help=f"one of: {', '.join(SIZES)} (large = 1,000,000 parcels)"),
    seed: int = typer.Option(7, help="random seed: the same seed gives the same province"),
    force: bool = typer.Option(False, "--force", help="empty the layer tables first"),
    demo_users: bool = typer.Option(True, "--demo-users/--no-demo-users",
                                    help="create demo-admin (national) and demo-officer (the sample province) with "
                                         "random passwords and keys, printed here once"),
    imagery: bool = typer.Option(True, "--imagery/--no-imagery",
                                 help="generate the synthetic 4-band image (raster layer sample_s2, 30 m)"),
) -> None:
    """Generate and load the sample province (skipped when data is already there, unless --force)."""
    if size not in SIZES:
        console.print(f"[red]error:[/red] unknown size {size!r}; use one of {', '.join(SIZES)}")
        raise typer.Exit(1)
    s = get_settings()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  TimeRemainingColumn(), console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("parcels", total=SIZES[size]["parcels"])

        def progress(_stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = load_sample(connect.url("writer", s), size=size, seed=seed, force=force, progress=progress)
    if report.skipped:
        console.print("sample: the database already holds data; nothing loaded (use --force to replace it)")
    table = Table("layer", "rows", title=f"sample province ({size}, seed {seed}) — synthetic data")
    for name, n in report.counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)
    console.print(f"{report.seconds:.1f} s")
    if imagery and not report.skipped:
        from sample_data.imagery import register_sample_s2

        info = register_sample_s2(connect.url("writer", s), seed=seed)
        console.print(f"raster {info.name}: synthetic blue/green/red/nir image (NDVI follows land use), {info.path}")
    if demo_users:
        _demo_users(connect.url("writer", s))


def _demo_users(dsn: str) -> None:
    """Two demo accounts with random secrets, shown on this console only (nothing fixed in the code)."""
    import secrets

    from layers.accounts.users import AccountError, create_user

    for name, role, provinces in (("demo-admin", "admin", ()), ("demo-officer", "officer", (NEW_PROVINCE[0],))):
        password = secrets.token_urlsafe(12)
        try:
            created = create_user(dsn, name, role, provinces=provinces, national=not provinces,
                                  display_name=f"Demo {role}", password=password)
        except AccountError as exc:
            if exc.status == 409:
                console.print(f"{name}: already there (new password: datso users password {name}; "
                              f"new key: datso users key {name})", soft_wrap=True)
                continue
            raise
        console.print(f"[bold]{name}[/bold] ({role}, {created.user.scope_text('en')}): password "
                      f"[bold]{password}[/bold], API key [bold]{created.key}[/bold] (shown once; demo only)", soft_wrap=True)
