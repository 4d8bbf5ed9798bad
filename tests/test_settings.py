"""One settings module (issue 9): every setting lives in `layers/settings.py`, is documented in the generated
`docs/settings.md`, and keeps the environment variable name it had (names are interfaces)."""

from __future__ import annotations

import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from layers import settings as mod
from layers.settings import ApiSettings, TileSettings, env_names, settings_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "settings.md"

# every variable datso read before issue 9 (from the six classes in six files): renaming one breaks deployments
NAMES_BEFORE_ISSUE_9 = """
DATABASE_URL DATSO_DATABASE_URL DATSO_DATA_DIR DATSO_PG_PORT DATSO_PG_BIN DATSO_DB_NAME DATSO_TITLE
DATSO_DEFAULT_LANG DATSO_DEFAULT_LIMIT DATSO_MAX_LIMIT DATSO_CACHE_CONTROL DATSO_MAX_BODY_BYTES
DATSO_PUBLIC_URL DATSO_CORS_ORIGINS DATSO_CORS_ALLOW_WRITES DATSO_TRUSTED_HOSTS DATSO_REFERRER_POLICY
DATSO_RATE_LIMIT_ENABLED DATSO_RATE_LIMIT_STORAGE_URI DATSO_RATE_LIMIT_AUTH_FAILURES DATSO_RATE_LIMIT_SEARCH
DATSO_RATE_LIMIT_EXPORTS DATSO_DB_MIN_CONNECTIONS DATSO_DB_MAX_CONNECTIONS DATSO_DB_CONNECT_TIMEOUT
DATSO_DB_ACQUIRE_TIMEOUT DATSO_READ_STATEMENT_TIMEOUT DATSO_EXPORT_STATEMENT_TIMEOUT DATSO_EXPORT_CONCURRENCY
DATSO_EXPORT_PROCESSES DATSO_EXPORT_NICE DATSO_RETRY_AFTER DATSO_WRITE_POOL_MIN_SIZE DATSO_WRITE_POOL_MAX_SIZE
DATSO_WRITE_STATEMENT_TIMEOUT_MS DATSO_MAX_GEOMETRY_VERTICES DATSO_MAX_GEOMETRY_BYTES DATSO_HEADER_TIMEOUT
DATSO_KEEP_ALIVE_TIMEOUT DATSO_MAX_HEAD_BYTES DATSO_LIMIT_CONCURRENCY DATSO_BACKLOG
DATSO_GRACEFUL_SHUTDOWN_TIMEOUT DATSO_WORKER_HEALTHCHECK_TIMEOUT DATSO_FILTER_MAX_BYTES DATSO_FILTER_MAX_DEPTH
DATSO_FILTER_MAX_GROUPS DATSO_FILTER_MAX_TERMS DATSO_TILE_CACHE_ENABLED DATSO_TILE_CACHE_BYTES
DATSO_TILE_CACHE_DIR DATSO_TILE_CACHE_CONTROL DATSO_TILE_EXTENT DATSO_TILE_BUFFER DATSO_TILE_MAX_FEATURES
DATSO_TILE_MAX_TILE_BYTES DATSO_TILE_ARCHIVE DATSO_TILE_LISTEN DATSO_TILE_GZIP_LEVEL DATSO_IMAGERY_DIR
DATSO_IMAGERY_MINZOOM DATSO_IMAGERY_MAXZOOM DATSO_BASEMAP_URL DATSO_BASEMAP_ATTRIBUTION DATSO_BASEMAP_MAXZOOM
DATSO_MAP_TILE_MAXZOOM DATSO_MAP_SIMPLIFY_ABOVE DATSO_MAP_MAX_FEATURES DATSO_MAP_SIMPLIFY_TOLERANCE_M
DATSO_MAP_PRECISION
""".split()

# `DATSO_…` words in code and docs that are not environment variables
NOT_SETTINGS = {"DATSO_SRID_BASE",   # gis/crs.py: the base of datso's custom SRIDs
                # test-only knobs sizing the long write fuzz (tests/test_write_fuzz.py, docs/reliability.md)
                "DATSO_FUZZ_PER_FIELD", "DATSO_FUZZ_EXAMPLES", "DATSO_FUZZ_DB", "DATSO_TEST_DB", "DATSO_CORPUS_DB",
                # the notebooks' (the HTTP client's) service address and key, read by the notebooks, not the server
                "DATSO_URL", "DATSO_KEY"}


def _fields() -> list[tuple[type[BaseSettings], str, FieldInfo]]:
    return [(cls, name, field) for cls in mod.DOCUMENTED for name, field in cls.model_fields.items()]


def _documented_names() -> set[str]:
    return {n for cls, name, field in _fields() for n in env_names(cls, name, field)}


def test_docs_settings_md_is_what_the_generator_writes() -> None:
    """An undocumented or renamed setting fails here: regenerate with `python -m layers.settings > docs/settings.md`."""
    assert DOC.read_text(encoding="utf-8") == settings_markdown()


def test_the_documented_command_writes_the_table() -> None:
    res = subprocess.run([sys.executable, "-m", "layers.settings", "--markdown"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, check=True)
    assert res.stdout == DOC.read_text(encoding="utf-8")


def test_every_setting_has_a_one_line_description() -> None:
    for cls, name, field in _fields():
        assert field.description and field.description.strip(), f"{cls.__name__}.{name} has no description"
        assert "\n" not in field.description, f"{cls.__name__}.{name}: one line"
    for cls in mod.DOCUMENTED:
        assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} says what concern it holds"


def test_every_settings_class_is_documented() -> None:
    """A new class (or a field added to ApiSettings itself rather than to one of its concerns) cannot slip
    past the table."""
    classes = {obj for obj in vars(mod).values()
               if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj.__module__ == mod.__name__}
    assert classes - set(mod.DOCUMENTED) == {ApiSettings}
    parts = [c for c in ApiSettings.__mro__[1:] if c in mod.DOCUMENTED]
    assert set(ApiSettings.model_fields) == {name for c in parts for name in c.model_fields}


def test_no_environment_variable_was_renamed() -> None:
    names = _documented_names()
    assert [n for n in NAMES_BEFORE_ISSUE_9 if n not in names] == []
    assert "DATSO_DATABASE_READ_URL" in names


def test_tile_cache_control_is_read_by_the_tile_settings_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATSO_TILE_CACHE_CONTROL", "public, max-age=7")
    assert TileSettings(_env_file=None).cache_control == "public, max-age=7"  # type: ignore[call-arg]
    assert "tile_cache_control" not in ApiSettings.model_fields
    owners = [cls.__name__ for cls, name, field in _fields() if "DATSO_TILE_CACHE_CONTROL" in env_names(cls, name, field)]
    assert owners == ["TileSettings"]


def test_every_datso_name_in_code_and_docs_is_a_setting() -> None:
    """Nothing reads a `DATSO_` variable behind the settings module's back, and no doc names one that does
    not exist (prefixes such as `DATSO_TILE_` in prose are fine)."""
    files = [p for top in ("gis", "layers", "api", "tiles", "cli", "sample_data") for p in (ROOT / top).rglob("*.py")]
    files += [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    documented = _documented_names()
    unknown = {}
    for path in files:
        for word in set(re.findall(r"\bDATSO_[A-Z0-9_]*", path.read_text(encoding="utf-8"))):
            if not word.endswith("_") and word not in documented and word not in NOT_SETTINGS:
                unknown[word] = str(path.relative_to(ROOT))
    assert unknown == {}


def _sample(field: FieldInfo) -> tuple[str, Any]:
    """An environment value for `field` that differs from its default, and the value it should parse to."""
    ann = field.annotation
    optional = isinstance(ann, types.UnionType) or typing.get_origin(ann) is typing.Union
    base = next(a for a in typing.get_args(ann) if a is not type(None)) if optional else ann
    default = field.default
    if base is bool:
        return str(not default).lower(), not default
    if base is int:
        return str(default + 1), default + 1
    if base is float:
        return str(default + 0.5), default + 0.5
    if base is Path:
        return "/tmp/datso-settings-test", Path("/tmp/datso-settings-test")
    if typing.get_origin(base) is list:
        return "a.example, b.example", ["a.example", "b.example"]
    if typing.get_origin(base) is dict:       # JSON objects (registration thresholds and code patterns)
        value: dict[str, Any] = {"x": 1.5} if typing.get_args(base)[1] is float else {"x": "y-{seq}"}
        return orjson.dumps(value).decode(), value
    assert base is str, f"no sample for {ann}"
    return "x-settings-test", "x-settings-test"


@pytest.mark.parametrize(("cls", "name", "field"), _fields(),
                         ids=[f"{c.__name__}.{n}" for c, n, _ in _fields()])
def test_each_variable_sets_its_field(monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], name: str,
                                      field: FieldInfo) -> None:
    raw, expected = _sample(field)
    for env in env_names(cls, name, field):
        for other in env_names(cls, name, field):
            monkeypatch.delenv(other, raising=False)
        monkeypatch.setenv(env, raw)
        assert getattr(cls(_env_file=None), name) == expected, env  # type: ignore[call-arg]
        if cls in ApiSettings.__mro__:
            assert getattr(ApiSettings(_env_file=None), name) == expected, env  # type: ignore[call-arg]
