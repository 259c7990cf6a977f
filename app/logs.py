"""Structured logs with loguru: one compact JSON object per line on stderr, or plain text.

loguru's own `serialize=True` nests every field of its record; operators grep and ship
flat lines, so the JSON sink writes `{"time", "level", "message", ...bound fields}`.
"""

from __future__ import annotations

import sys
import traceback

import orjson
from loguru import logger

from app.observability.tracing import current_trace_id
from app.settings import Settings


def _add_trace_id(record) -> None:
    # Every line written while a request is served names its trace (docs/api.md: a 500 is
    # "logged with its trace id"); lines from background work have none.
    trace_id = current_trace_id()
    if trace_id is not None:
        record["extra"].setdefault("trace_id", trace_id)


def _json_line(message) -> None:
    record = message.record
    line = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["name"],
        **record["extra"],
    }
    if record["exception"] is not None:
        line["exception"] = "".join(traceback.format_exception(*record["exception"]))
    sys.stderr.write(orjson.dumps(line, default=str).decode() + "\n")


def configure_logging(settings: Settings) -> None:
    logger.remove()
    logger.configure(patcher=_add_trace_id)
    level = settings.log_level.upper()
    if settings.log_json:
        logger.add(_json_line, level=level)
    else:
        # diagnose=False: tracebacks must not print variable values (tokens, passwords).
        logger.add(sys.stderr, level=level, backtrace=False, diagnose=False)
