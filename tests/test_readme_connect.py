"""README.md's "Connect from QGIS / GDAL / Python" commands, run as written (the base URL of `make run` replaced
by a live server's) with Debian's GDAL 3.6 command-line tools and pyogrio/geopandas (GDAL 3.12): each must
succeed and give what SQL counts, so the README cannot rot. The landing page's snippets must be README lines.
The README still opens with the two set-up commands, `make run` and `make test`."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import psycopg
import pyogrio
import pytest

from layers.catalog.registry import LAYERS
from layers.store.sql import quote_ident

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Connect from QGIS / GDAL / Python"
README_BASE = "http://127.0.0.1:8000"
# README lines that need work of another branch of issue 10; strict: once that work is merged the test XPASSes
# and fails, so the marker is removed then
WAITING = {
}


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    return [(lang, body.strip("\n").splitlines()) for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, re.S)]


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start:end if end > 0 else None]


def _code(line: str) -> str:
    """The command without its trailing comment (README lines carry none inside quotes)."""
    return re.sub(r"\s+#.*$", "", line).strip()


def _commands(lang: str) -> list[str]:
    return [_code(line) for block_lang, lines in _blocks(_section()) if block_lang == lang
            for line in lines if _code(line) and not line.lstrip().startswith("#")]


def _marks(line: str) -> list[Any]:
    return [pytest.mark.xfail(reason=why, strict=True) for key, why in WAITING.items() if key in line]


BASH = [pytest.param(c, marks=_marks(c), id=c.split(README_BASE)[-1][:60] or c[:40]) for c in _commands("bash")]
PYTHON = [c for c in _commands("python") if not c.startswith(("import ", "from "))]
PYTHON_PARAMS = [pytest.param(c, marks=_marks(c), id=c.split("=")[0].strip()) for c in PYTHON]


def _expected(dsn: str, line: str) -> tuple[str, int]:
    """(layer id, SQL count) of what a README line reads: `/collections/<id>`, optionally `field = 'value'`."""
    m = re.search(r"/collections/(\w+)", line)
    assert m, line
    layer = LAYERS[m.group(1)]
    sql, args = f"SELECT count(*) FROM {quote_ident(layer.table)}", []  # noqa: S608 - registry identifiers
    w = re.search(r"""where[= ]+["'](\w+) = '([^']*)'["']""", line)
    if w:
        assert layer.get_field(w.group(1)) is not None
        sql += f" WHERE {quote_ident(w.group(1))} = %s"
        args.append(w.group(2))
    with psycopg.connect(dsn) as c:
        row = c.execute(sql, args).fetchone()
    assert row is not None
    return layer.id, int(row[0])


def test_readme_opens_with_the_two_setup_commands() -> None:
    lang, lines = _blocks(README.read_text(encoding="utf-8"))[0]
    assert lang == "bash" and len(lines) == 2
    assert lines[0].startswith("make run ") and lines[1].startswith("make test ")
    assert README.read_text(encoding="utf-8").index(SECTION) > README.read_text(encoding="utf-8").index("make test")


def test_the_section_has_gdal_and_python_commands() -> None:
    bash = _commands("bash")
    assert any(c.startswith("ogrinfo OAPIF:") for c in bash)
    assert any(c.startswith("ogr2ogr -f GPKG") and "-where" in c for c in bash)
    assert any(c.startswith("ogrinfo -so MVT:") for c in bash)
    assert any("gpd.read_file(" in c for c in PYTHON) and any("pyogrio.read_dataframe(" in c for c in PYTHON)


@pytest.mark.parametrize("command", BASH)
def test_gdal_command(command: str, live_server: Any, sample_db: str, tmp_path: Path) -> None:
    argv = shlex.split(command.replace(README_BASE, live_server.url))
    out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    assert "ERROR" not in out.stderr and "FAILURE" not in out.stdout, out.stderr
    if argv[0] == "ogr2ogr":
        target = tmp_path / argv[argv.index("-f") + 2]
        layer, n = _expected(sample_db, command)
        info = pyogrio.read_info(target)
        assert info["features"] == n > 0
        assert info["crs"] in ("EPSG:4326", "OGC:CRS84")
    elif argv[1].startswith("OAPIF:") and argv[1].rstrip("/").endswith(live_server.url.split("//")[1]):
        for layer_id in LAYERS:                          # the collections are listed
            assert f": {layer_id} " in out.stdout
    else:
        m = re.search(r"/collections/(\w+)", command)
        assert m and m.group(1) in out.stdout


_PY = """
import json, sys
import geopandas as gpd
import pyogrio
{line}
name = {name!r}
v = globals()[name]
print(json.dumps({{"rows": len(v), "crs": list(v.crs.to_authority() or []) if v.crs is not None else None,
                  "bounds": [float(b) for b in v.total_bounds]}}))
"""


@pytest.mark.parametrize("line", PYTHON_PARAMS)
def test_python_line(line: str, live_server: Any, sample_db: str) -> None:
    """Each statement in a child process (pyogrio holds the GIL during GDAL's HTTP calls: in-process, the live
    server's thread could not answer)."""
    name = line.split("=")[0].strip()
    code = _PY.format(line=line.replace(README_BASE, live_server.url), name=name)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    _, n = _expected(sample_db, line)
    assert got["rows"] == n > 0
    m = re.search(r'CRS="EPSG:(\d+)"', line)
    if m:    # VN-2000 keeps its EPSG identity; metres in the province's TM-3 zone
        assert got["crs"] == ["EPSG", m.group(1)]
        assert 300_000 < got["bounds"][0] < got["bounds"][2] < 900_000
        assert 1_000_000 < got["bounds"][1] < got["bounds"][3] < 1_300_000
    else:
        assert got["crs"] in (["EPSG", "4326"], ["OGC", "CRS84"])
        assert 105 < got["bounds"][0] < got["bounds"][2] < 107 and 9 < got["bounds"][1] < got["bounds"][3] < 11


def test_landing_snippets_are_readme_lines(live_server: Any) -> None:
    """What the landing page offers to copy is what this test runs (the README's lines, with the server's URL)."""
    page = lxml.html.fromstring(httpx.get(live_server.url + "/", headers={"Accept": "text/html"}, timeout=30).text)
    readme = {c.replace(README_BASE, live_server.url) for c in _commands("bash") + _commands("python")}
    for snippet in ("gdal-snippet", "python-snippet"):
        text = page.xpath(f"//*[@id='{snippet}']")[0].text_content()
        lines = [_code(line) for line in text.splitlines() if _code(line) and not line.startswith("#")]
        assert lines
        for line in lines:
            assert line in readme, line
