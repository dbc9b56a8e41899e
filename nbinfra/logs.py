"""Loggers under the ``nbinfra`` hierarchy: silent by default, secrets redacted.

Use ``get_logger(__name__)`` in every module. Records are redacted by a filter attached
to each nbinfra logger, so a handler a user adds anywhere never sees a known secret.
"""

from __future__ import annotations

import logging

from nbinfra._secrets import redact

_root = logging.getLogger("nbinfra")
_root.addHandler(logging.NullHandler())


class RedactingFilter(logging.Filter):
    """Replaces every known secret in the formatted message with ``********``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        return True


_FILTER = RedactingFilter()
_root.addFilter(_FILTER)


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (must be under ``nbinfra``) with the redacting filter attached."""
    if name != "nbinfra" and not name.startswith("nbinfra."):
        name = f"nbinfra.{name}"
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
