"""dates in a sane range: CHECK constraints on the layers' date and timestamptz columns, added NOT VALID

`layers.ingest.validation` refuses dates outside each field's `date_range` (default 1900-01-01 – 2200-12-31, see
`layers.catalog.registry.DEFAULT_DATE_RANGE`) on import and on API writes. These constraints are the same rule in the
database, for every other writer (psql, a script): a PATCH of `0001-01-01T00:00:00+14:00` was stored as year
1 BC, which Python cannot represent, and every page that read it answered 500.

Date columns get exactly the validation's range. The validation checks a timestamp's calendar date as written,
in its own UTC offset (up to ±24 h), so timestamptz columns get one day of margin on each side.

NOT VALID: rows already outside the range do not block the upgrade (the reading faces tolerate them); any new
row or update of such a row must satisfy the check. `ALTER TABLE ... VALIDATE CONSTRAINT` once they are fixed.

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOW, HIGH = "1900-01-01", "2200-12-31"
DATE_COLUMNS = {
    "admin_units": ("valid_from", "valid_to"),
    "auction_plots": ("viewing_start", "viewing_end"),
    "growing_areas": ("valid_from", "valid_to"),
    "trace_lots": ("harvest_date", "pack_date", "expiry_date"),
}
TIMESTAMP_COLUMNS = {
    "auction_plots": ("registration_start", "registration_end", "auction_date"),
    "trace_events": ("event_time",),
}


def _name(table: str, column: str) -> str:
    return f"ck_{table}_{column}_range"     # the models' naming convention (ck_<table>_<name>)


def upgrade() -> None:
    for table, columns in DATE_COLUMNS.items():
        for c in columns:
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {_name(table, c)} "
                       f"CHECK ({c} BETWEEN DATE '{LOW}' AND DATE '{HIGH}') NOT VALID")
    for table, columns in TIMESTAMP_COLUMNS.items():
        for c in columns:
            op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {_name(table, c)} "
                       f"CHECK ({c} >= TIMESTAMPTZ '{LOW}T00:00:00Z' - INTERVAL '1 day' "
                       f"AND {c} < TIMESTAMPTZ '{HIGH}T00:00:00Z' + INTERVAL '2 days') NOT VALID")


def downgrade() -> None:
    for group in (DATE_COLUMNS, TIMESTAMP_COLUMNS):
        for table, columns in group.items():
            for c in columns:
                op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {_name(table, c)}")
