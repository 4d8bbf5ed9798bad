"""The one error type for bad input anywhere in datso: a message in Vietnamese and English and the HTTP
status it maps to (a class attribute, or given where the error is raised). The API turns any `BilingualError`
into application/problem+json (api/errors.py) with its `members()`; the CLI prints `.message(lang)`.
Subclasses only name the kind of problem."""

from __future__ import annotations

from typing import Any


class BilingualError(ValueError):
    status: int = 400

    def __init__(self, vi: str, en: str, status: int | None = None) -> None:
        super().__init__(en)
        self.vi, self.en = vi, en
        if status is not None:
            self.status = status

    def message(self, lang: str = "vi") -> str:
        return self.vi if lang == "vi" else self.en

    def members(self) -> dict[str, Any]:
        """Extension members of the problem+json document (RFC 9457 §3.2); none unless a subclass says so."""
        return {}
