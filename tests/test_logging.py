"""One logging setup (issue 9): `layers.logging.configure_logging` renders stdlib, structlog and uvicorn records
with one handler, as JSON lines when stderr is not a terminal; the CLI and the app both call it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SNIPPET = """
import logging, structlog
from layers.logging import configure_logging
configure_logging(); configure_logging()            # idempotent: one handler
logging.getLogger("datso.api").warning("pool dropped: %s", "x")
structlog.get_logger("datso.api").error("unhandled_error", request_id="abc")
structlog.get_logger("datso.api").debug("below the level")
logging.getLogger("uvicorn.error").info("Uvicorn running")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("datso.tiles").exception("listener failed")
print(len(logging.getLogger().handlers))
"""


def test_every_logger_goes_through_one_json_handler() -> None:
    res = subprocess.run([sys.executable, "-c", SNIPPET], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert res.stdout.strip() == "1"
    records = [json.loads(line) for line in res.stderr.splitlines()]
    assert [(r["logger"], r["level"], r["event"]) for r in records] == [
        ("datso.api", "warning", "pool dropped: x"), ("datso.api", "error", "unhandled_error"),
        ("uvicorn.error", "info", "Uvicorn running"), ("datso.tiles", "error", "listener failed")]
    assert records[1]["request_id"] == "abc"
    assert "ZeroDivisionError" in records[3]["exception"]
    assert all("timestamp" in r for r in records)


def test_the_cli_logs_through_it() -> None:
    res = subprocess.run([sys.executable, "-c", "import logging, sys; sys.argv = ['datso', 'db', 'url']\n"
                          "from cli.main import app\ntry:\n    app()\nexcept SystemExit:\n    pass\n"
                          "logging.getLogger('datso.cli').warning('after a command')"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "DATABASE_URL": "postgresql://u@h/d"})
    assert res.stdout.strip() == "postgresql://u@h/d"
    assert json.loads(res.stderr.strip().splitlines()[-1])["event"] == "after a command"
