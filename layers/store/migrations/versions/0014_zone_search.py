"""search indexes of the planning and land-price zones (the same expressions as 0010's, for the layers 0011 added)

Revision ID: 0014
Revises: 0011
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> its layer's search fields, in the registry's order (layers.catalog.registry)
SEARCH_DOCUMENTS = {
    "planning_zones": ("zone_code",),
    "land_price_zones": ("zone_code", "road_name"),
}


def document(columns: Sequence[str]) -> str:
    if len(columns) == 1:
        return f"datso_fold({columns[0]}::text)"
    return "datso_fold(" + " || ' ' || ".join(f"coalesce({c}::text, '')" for c in columns) + ")"


def upgrade() -> None:
    for table, columns in SEARCH_DOCUMENTS.items():
        op.execute(f"CREATE INDEX ix_{table}_search_trgm ON {table} USING gin ({document(columns)} gin_trgm_ops)")
        op.execute(f"CREATE INDEX ix_{table}_search_words ON {table} "
                   f"USING gin (to_tsvector('simple'::regconfig, {document(columns)}))")


def downgrade() -> None:
    for table in SEARCH_DOCUMENTS:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_trgm")
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_words")
