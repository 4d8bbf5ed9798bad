"""search indexes of the planning and land-price zones

0010 gave every searchable layer of its time a GIN trigram index and a words index on the folded text of its
search fields (the expression of `layers.query.search.document_sql`); the zone layers of 0011 are searchable
too (`zone_code`; `zone_code`, `road_name`) and get the same two indexes here, and their words join the
`search_words` list that misspellings are corrected to (tests/test_admin_units.py checks every searchable
layer has its indexes).

Revision ID: 0012
Revises: 0011
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> its layer's search fields, in the registry's order (layers.catalog.registry); as in 0010
BEFORE = {
    "admin_units": ("name", "code"),
    "parcels": ("address",),
    "auction_plots": ("plot_code", "address"),
    "growing_areas": ("code", "owner"),
    "packing_facilities": ("code", "name"),
    "trace_lots": ("lot_number", "gtin"),
    "trace_events": ("event_id",),
}
ADDED = {
    "planning_zones": ("zone_code",),
    "land_price_zones": ("zone_code", "road_name"),
}


def document(columns: Sequence[str]) -> str:
    if len(columns) == 1:
        return f"datso_fold({columns[0]}::text)"
    return "datso_fold(" + " || ' ' || ".join(f"coalesce({c}::text, '')" for c in columns) + ")"


def words(columns: Sequence[str]) -> str:
    return f"to_tsvector('simple'::regconfig, {document(columns)})"


def _words_view(documents: dict[str, tuple[str, ...]]) -> None:
    docs = " UNION ALL ".join(f"SELECT {words(cols)} FROM {table}" for table, cols in documents.items())
    op.execute("DROP MATERIALIZED VIEW IF EXISTS search_words")
    op.execute("CREATE MATERIALIZED VIEW search_words AS SELECT word, ndoc FROM ts_stat($q$" + docs + "$q$) "
               "WHERE length(word) >= 3 AND word !~ '[0-9]'")
    op.execute("CREATE UNIQUE INDEX ix_search_words_word ON search_words (word)")
    op.execute("CREATE INDEX ix_search_words_trgm ON search_words USING gin (word gin_trgm_ops)")


def upgrade() -> None:
    for table, columns in ADDED.items():
        op.execute(f"CREATE INDEX ix_{table}_search_trgm ON {table} USING gin ({document(columns)} gin_trgm_ops)")
        op.execute(f"CREATE INDEX ix_{table}_search_words ON {table} USING gin ({words(columns)})")
    _words_view({**BEFORE, **ADDED})


def downgrade() -> None:
    _words_view(BEFORE)
    for table in ADDED:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_trgm")
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_words")
