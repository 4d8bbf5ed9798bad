"""What Alembic autogenerate compares: our tables, not PostGIS's (spatial_ref_sys, tiger, topology)."""

from __future__ import annotations

from typing import Any

# expression indexes made by migrations only (Alembic cannot compare expressions): the search indexes of 0010
MIGRATION_ONLY_INDEXES = ("_search_trgm", "_search_words")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "index" and reflected and compare_to is None and (name or "").endswith(MIGRATION_ONLY_INDEXES):
        return False
    return not (type_ == "table" and reflected and compare_to is None)
