"""Rewrite the module paths of the flat `layers/` (before its split into subpackages) to their new homes.

For branches written before the split. Merging one with the split conflicts on import lines only (git's rename
detection carries the edits into the moved files). Keep both sides of each conflicting import hunk (e.g.
`git merge-file --union` on the three index stages), then

    python scripts/relayer_imports.py $(git ls-files '*.py' '*.md' '*.ipynb' '*.toml')
    ruff check --select I,F401 --fix .

and mend any parenthesised `from ... import (` that the union left open. It rewrites `layers.query.features` ->
`layers.query.features`, `from layers import vocab` -> `from layers.store import vocab`, `layers/ingest/writes.py` ->
`layers/ingest/writes.py` and so on; paths already rewritten are left alone (`layers.maps.maps`,
`layers.maps.folium_export`; a bare `layers.maps.maps` is read as the old module). New migrations added under
`layers/store/migrations/versions/` belong in `layers/store/migrations/versions/` (git moves them itself and reports
a "file location" conflict: `git add` the moved file).
"""

from __future__ import annotations

import pathlib
import re
import sys

NEW_HOME = {
    "registry": "catalog",
    "vocab": "store", "models": "store", "migrations_filter": "store", "migrations": "store",
    "pgcluster": "store", "db": "store",
    "features": "query", "cql2": "query", "search": "query", "exporter": "query",
    "validation": "ingest", "importer": "ingest", "writes": "ingest",
    "folium_export": "maps", "maps": "maps",
    "auth": "accounts",
}
_NAMES = "|".join(sorted(NEW_HOME, key=len, reverse=True))
# `maps` is both an old module and a new package: `layers.maps.maps`, `layers.maps.folium_export` are new already
_DOTTED = re.compile(r"(?<![\w./])layers\.(" + _NAMES + r")\b(?!/)(?<!maps)"
                     r"|(?<![\w./])layers\.(maps)\b(?!/|\.(?:maps|folium_export|vendor)\b)")
_SLASHED = re.compile(r"(?<![\w./])layers/(" + _NAMES + r")(?=\.py\b)|(?<![\w./])layers/(migrations)(?=/|`)")
_FROM = re.compile(r"^(\s*)from layers import ([\w ,]+?)(\s*(#.*)?)$", re.M)


def _from(m: re.Match[str]) -> str:
    indent, items, tail = m.group(1), m.group(2), m.group(3)
    by_home: dict[str, list[str]] = {}
    for item in (p.strip() for p in items.split(",")):
        name = item.split(" as ")[0].strip()
        if name not in NEW_HOME:
            return m.group(0)          # config, logging, analysis: still at the top
        by_home.setdefault(NEW_HOME[name], []).append(item)
    return "\n".join(f"{indent}from layers.{home} import {', '.join(items)}" for home, items in by_home.items()) + tail


def rewrite(text: str, python: bool) -> str:
    text = _DOTTED.sub(lambda m: f"layers.{NEW_HOME[m.group(m.lastindex or 1)]}.{m.group(m.lastindex or 1)}", text)
    text = _SLASHED.sub(lambda m: f"layers/{NEW_HOME[m.group(m.lastindex or 1)]}/{m.group(m.lastindex or 1)}", text)
    return _FROM.sub(_from, text) if python else text


def main(paths: list[str]) -> int:
    changed = 0
    for path in paths:
        p = pathlib.Path(path)
        if not p.is_file():
            continue
        text = p.read_text(encoding="utf-8")
        new = rewrite(text, p.suffix == ".py")
        if new != text:
            p.write_text(new, encoding="utf-8")
            changed += 1
            print(f"rewrote {path}")
    print(f"{changed} file(s) rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
