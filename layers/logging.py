"""THE logging setup: structlog renders every record, JSON lines when stderr is not a TTY (a console view on
one). `configure_logging()` is called once by each face (`create_app()` for the API, the `datso` callback for
the CLI); nothing else configures logging.

Code logs either way and both reach the same handler and renderer: `structlog.get_logger("datso.api")` (events
with key-value context, e.g. the unhandled-error record in api/errors.py) or a stdlib `logging.getLogger("datso.…")`
(libraries such as httpx and uvicorn log that way too). uvicorn's own loggers are handed over to this setup
(their handlers removed, records propagated), so a server's log is one format.
"""

from __future__ import annotations

import logging
import sys

import structlog

_configured = False
_HANDED_OVER = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(level: int = logging.INFO) -> None:
    global _configured
    if _configured:
        return
    _configured = True
    tty = sys.stderr.isatty()
    # the console view renders exceptions itself; JSON needs them as text
    render: list[structlog.typing.Processor] = (
        [structlog.dev.ConsoleRenderer()] if tty
        else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()])
    shared: list[structlog.typing.Processor] = [structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name,
              structlog.processors.TimeStamper(fmt="iso")]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render]))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    for name in _HANDED_OVER:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
