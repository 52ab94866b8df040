"""Keep Presidio's and tldextract's log records free of content.

Presidio logs the words around every match at DEBUG (``Context list is: ...``) and, at
ERROR, the text an IBAN failed to validate; a traceback's exception message can quote
input too. Logger levels are not enough: the operator's logging setup may lower them. A
filter on the library's own logger runs for every record that logger emits, whatever the
handlers, so it is the one place that holds: records below WARNING are dropped, and the
rest keep only their message template (no arguments, no traceback).
"""

from __future__ import annotations

import logging

#: Every logger Presidio and tldextract create (a filter only sees its own logger's
#: records, not a child's, so each one is named). ``decision_process`` traces analyses.
LIBRARY_LOGGERS = ("presidio-analyzer", "decision_process", "tldextract", "tldextract.cache")
#: Warnings that are expected on every load (the registry skips the Spanish, Italian and
#: Polish recognizers of its default configuration for an English-only engine): noise.
_EXPECTED = ("Recognizer not added to registry because language is not supported",)


class ContentFreeFilter(logging.Filter):
    """Drop chatter; strip whatever could carry content from warnings and errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        if str(record.msg).startswith(_EXPECTED):
            return False
        if record.args:
            # The template alone: "Failed to validate text %s" says what happened.
            record.msg = str(record.msg)
            record.args = None
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


_FILTER = ContentFreeFilter()


def quiet_library_loggers() -> None:
    """Install the filter once on each library logger (idempotent)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
