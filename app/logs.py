"""Structured logs with loguru: one JSON object per line on stderr, or plain text."""

from __future__ import annotations

import sys

from loguru import logger

from app.settings import Settings


def configure_logging(settings: Settings) -> None:
    logger.remove()
    logger.add(sys.stderr, level=settings.log_level.upper(), serialize=settings.log_json, backtrace=False,
               diagnose=False)  # diagnose would print variable values (tokens, passwords) in tracebacks
