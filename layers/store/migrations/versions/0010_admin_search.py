"""real administrative units and forgiving search

- admin_units.kind (ward, commune, township ... — the kind is part of a unit's real name) and
  admin_units.tm3_srid (the VN-2000 TM-3 zone of an old province: a parcel's old commune says how to
  project it, since one new province can span several zones).
- The parcel key is per old commune + sheet + parcel (map sheets kept their pre-2025 numbering when communes
  were merged): UNIQUE (commune_code, old_commune_code, map_sheet, parcel_no) NULLS NOT DISTINCT.
- Search: the `unaccent` and `pg_trgm` extensions, an IMMUTABLE folding function `datso_fold(text)`
  (`unaccent()` itself is only STABLE, because its dictionary could change: the wrapper names the dictionary
  explicitly, the usual trick), and one GIN trigram index per searchable layer on the folded text of its
  search fields (the same expression as `layers.query.search.document_sql`; tests/test_admin_units.py
  checks every searchable layer has it), for parts of words; and one GIN index on its words
  (`to_tsvector('simple', ...)`): whole-word lookups stay fast on 1,000,000 parcels where a trigram scan
  of common words ("xa", "ap") reads long posting lists.
- `search_words`: a materialized view of every word in the searchable text (at least 3 letters, no digits),
  with a trigram index: a misspelt word is corrected to its nearest real word (`fuzzystrmatch`'s
  levenshtein(): one edit in a word of up to 5 letters, two in a longer one) (refreshed by the sample
  loader, `REFRESH MATERIALIZED VIEW CONCURRENTLY search_words` after an import; a stale list only means
  fewer corrections).

Revision ID: 0010
Revises: 0005
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("province", "city", "town", "district", "urban_district", "commune", "ward", "township", "special_zone")
# table -> its layer's search fields, in the registry's order (layers.catalog.registry)
SEARCH_DOCUMENTS = {
    "admin_units": ("name", "code"),
    "parcels": ("address",),
    "auction_plots": ("plot_code", "address"),
    "growing_areas": ("code", "owner"),
    "packing_facilities": ("code", "name"),
    "trace_lots": ("lot_number", "gtin"),
    "trace_events": ("event_id",),
}


def document(columns: Sequence[str]) -> str:
    if len(columns) == 1:
        return f"datso_fold({columns[0]}::text)"
    return "datso_fold(" + " || ' ' || ".join(f"coalesce({c}::text, '')" for c in columns) + ")"


def words(columns: Sequence[str]) -> str:
    return f"to_tsvector('simple'::regconfig, {document(columns)})"


def _words_view() -> str:
    docs = " UNION ALL ".join(f"SELECT {words(cols)} FROM {table}" for table, cols in SEARCH_DOCUMENTS.items())
    return ("CREATE MATERIALIZED VIEW search_words AS SELECT word, ndoc FROM ts_stat($q$" + docs + "$q$) "
            "WHERE length(word) >= 3 AND word !~ '[0-9]'")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")     # levenshtein(): typo corrections
    op.execute("""
        CREATE FUNCTION datso_fold(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$""")
    op.execute("ALTER TABLE admin_units ADD COLUMN kind varchar(16), ADD COLUMN tm3_srid integer")
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    op.execute(f"ALTER TABLE admin_units ADD CONSTRAINT ck_admin_units_kind CHECK (kind IS NULL OR kind IN ({kinds}))")
    op.execute("ALTER TABLE parcels DROP CONSTRAINT uq_parcels_commune_code_map_sheet_parcel_no")
    op.execute("ALTER TABLE parcels ADD CONSTRAINT uq_parcels_commune_code_old_commune_code_map_sheet_parcel_no "
               "UNIQUE NULLS NOT DISTINCT (commune_code, old_commune_code, map_sheet, parcel_no)")
    op.execute("CREATE INDEX ix_parcels_map_sheet_parcel_no ON parcels (map_sheet, parcel_no)")
    for table, columns in SEARCH_DOCUMENTS.items():
        op.execute(f"CREATE INDEX ix_{table}_search_trgm ON {table} USING gin ({document(columns)} gin_trgm_ops)")
        op.execute(f"CREATE INDEX ix_{table}_search_words ON {table} USING gin ({words(columns)})")
    op.execute(_words_view())
    op.execute("CREATE UNIQUE INDEX ix_search_words_word ON search_words (word)")
    op.execute("CREATE INDEX ix_search_words_trgm ON search_words USING gin (word gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW IF EXISTS search_words")
    for table in SEARCH_DOCUMENTS:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_trgm")
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_words")
    op.execute("DROP INDEX IF EXISTS ix_parcels_map_sheet_parcel_no")
    op.execute("ALTER TABLE parcels DROP CONSTRAINT uq_parcels_commune_code_old_commune_code_map_sheet_parcel_no")
    op.execute("ALTER TABLE parcels ADD CONSTRAINT uq_parcels_commune_code_map_sheet_parcel_no "
               "UNIQUE (commune_code, map_sheet, parcel_no)")
    op.execute("ALTER TABLE admin_units DROP CONSTRAINT ck_admin_units_kind")
    op.execute("ALTER TABLE admin_units DROP COLUMN kind, DROP COLUMN tm3_srid")
    op.execute("DROP FUNCTION datso_fold(text)")
    op.execute("DROP EXTENSION IF EXISTS fuzzystrmatch")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
    op.execute("DROP EXTENSION IF EXISTS unaccent")
