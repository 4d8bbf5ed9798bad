"""What Alembic autogenerate compares: our tables, not PostGIS's (spatial_ref_sys, tiger, topology)."""

from __future__ import annotations

from typing import Any


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and reflected and compare_to is None)
