"""The analyst notebooks run top to bottom against a live server on the test database (sample province, its
synthetic imagery registered, an officer's key for the write), through the HTTP client only; stored stripped."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from layers.accounts.auth import create_key
from layers.settings import get_imagery_settings
from tests.conftest import rows_removed_after

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
SERVER_SIDE = re.compile(r"^\s*(from|import)\s+(gis|layers|tiles|api|cli|sample_data|psycopg|sqlalchemy)\b", re.M)


@pytest.fixture(scope="module")
def imagery(tmp_path_factory: pytest.TempPathFactory, sample_db: str) -> Iterator[None]:
    """The synthetic sample image (`datso sample load` makes it) in a folder of this module: the live server
    reads the imagery folder per request."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DATSO_IMAGERY_DIR", str(tmp_path_factory.mktemp("notebook-imagery")))
    get_imagery_settings.cache_clear()
    from sample_data.imagery import register_sample_s2

    register_sample_s2(sample_db)
    try:
        yield
    finally:
        mp.undo()
        get_imagery_settings.cache_clear()


@pytest.fixture(scope="module", autouse=True)
def _leave_the_sample_as_found(sample_db: str) -> Iterator[None]:
    """The drafts the officer's notebook writes are removed afterwards (other modules count the sample)."""
    with rows_removed_after(sample_db):
        yield


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, sample_db: str, live_server: Any, imagery: None,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", sample_db)
    monkeypatch.setenv("DATSO_URL", live_server.url)     # the HTTP client's service (no database access)
    monkeypatch.setenv("DATSO_KEY", create_key(sample_db, f"notebook-officer-{uuid.uuid4().hex[:8]}", "officer"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parents[1])}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o.get("output_type") == "error"]


def test_notebooks_present() -> None:
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_stored_stripped_http_only_vietnamese_first(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    text = "\n".join(c.source for c in code)
    assert "datso_client" in text and not SERVER_SIDE.search(text)       # through the HTTP client only
    assert "TODO" not in "\n".join(c.source for c in nb.cells)
    title = nb.cells[0].source
    assert nb.cells[0].cell_type == "markdown" and title.startswith("# ")
    assert re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", title.splitlines()[0], re.I)
