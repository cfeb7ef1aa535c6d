"""The ``ailink`` logger: silent unless asked, never a secret.

By default it has only a ``NullHandler`` (a library prints nothing on its own). ``AILINK_LOG=info``
(or ``debug``, ``warning``), read once at import like the openai SDK's ``OPENAI_LOG``, adds one
stderr handler and sets the level; an application can instead attach its own handlers to the
``ailink`` logger. What is logged: a call parked for approval (approval id, method, path, how to
decide: the CLI command and the inbox page when the gateway names one), each retry, each approval's
outcome, and (debug) every proxied call's answer. Every message passes :func:`ailink._secrets.scrub`
(tokens and keys masked, URL passwords and secret parameters hidden) before any handler sees it.
"""

from __future__ import annotations

import logging
import os
import sys

ENV_VAR = "AILINK_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FORMAT = "[ailink %(levelname)s] %(message)s"

logger = logging.getLogger("ailink")


class _Scrub(logging.Filter):
    """Masks secrets in the message before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ailink._secrets import scrub

        record.msg = scrub(record.getMessage())
        record.args = None
        return True


class _StderrHandler(logging.Handler):
    """The handler ``AILINK_LOG`` adds: writes to whatever ``sys.stderr`` is at the time."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def configure(level: str | None = None) -> None:
    """Apply ``level`` (``"info"``, ``"debug"``, ...; default: ``$AILINK_LOG``); an empty or unknown
    value leaves the logger silent. Calling it again replaces the earlier setting."""
    value = (os.environ.get(ENV_VAR, "") if level is None else level).strip().lower()
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    if value in LEVELS:
        logger.addHandler(_StderrHandler())
        logger.setLevel(LEVELS[value])
    else:
        logger.setLevel(logging.NOTSET)


if not any(isinstance(f, _Scrub) for f in logger.filters):
    logger.addFilter(_Scrub())
if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
    logger.addHandler(logging.NullHandler())
configure()

__all__ = ["ENV_VAR", "configure", "logger"]
