"""Accept only one read-only statement for ``mapper analytics query``.

This is the first of two locks: it refuses, with a clear reason, anything that is not a
single ``SELECT``/``WITH`` statement, and the clauses of a ``SELECT`` that act outside the
query (``INTO OUTFILE`` writes a file even in ClickHouse's read-only mode; ``FORMAT`` and
``SETTINGS`` would fight the client's own). The second lock is ClickHouse's ``readonly``
setting on every query session, which refuses writes, DDL and table functions such as
``file()`` or ``url()`` whatever slipped past this scanner.

The scanner only needs to know where string literals, quoted identifiers and comments are,
so that a ``;`` or a keyword inside them is not mistaken for SQL.
"""

from __future__ import annotations

import re

_READ_KEYWORDS = frozenset({"SELECT", "WITH"})
_FORBIDDEN = {
    ("INTO", "OUTFILE"): "INTO OUTFILE is not allowed (it writes files)",
    ("FORMAT",): "a FORMAT clause is not allowed; use --json for machine-readable output",
    ("SETTINGS",): "a SETTINGS clause is not allowed",
}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class QueryRefused(ValueError):
    """The statement is not a single read-only SELECT; the message says why."""


def check_select(sql: str) -> str:
    """``sql`` without a trailing ``;`` (plus a newline) if it is one SELECT/WITH statement."""
    words, semicolons, body_end = _scan(sql)
    statement = sql[:body_end].strip() if semicolons else sql.strip()
    if not words:
        raise QueryRefused("the query is empty")
    if semicolons and _scan(sql[body_end + 1 :])[0]:
        raise QueryRefused("only one statement is allowed")
    if semicolons > 1:
        raise QueryRefused("only one statement is allowed")
    first = words[0].upper()
    if first not in _READ_KEYWORDS:
        raise QueryRefused(f"only SELECT or WITH queries are allowed, not {first}")
    upper = [word.upper() for word in words]
    for sequence, reason in _FORBIDDEN.items():
        size = len(sequence)
        if any(tuple(upper[i : i + size]) == sequence for i in range(len(upper) - size + 1)):
            raise QueryRefused(reason)
    # A trailing ``-- comment`` would swallow whatever the client appends (its FORMAT).
    return statement + "\n"


def _scan(sql: str) -> tuple[list[str], int, int]:
    """Words outside literals and comments (names qualified by a dot or called as functions
    get a leading ``.``, so they never match a keyword), the number of ``;`` and where the
    first one is."""
    words: list[str] = []
    semicolons = 0
    first_semicolon = len(sql)
    i = 0
    n = len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"`":
            i = _skip_quoted(sql, i, char)
        elif sql.startswith("--", i) or char == "#":
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                raise QueryRefused("unterminated /* comment")
            i = end + 2
        elif char == ";":
            if semicolons == 0:
                first_semicolon = i
            semicolons += 1
            i += 1
        elif match := _WORD.match(sql, i):
            i = match.end()
            qualified = match.start() > 0 and sql[match.start() - 1] == "."
            called = sql[i:].lstrip()[:1] == "("
            # ``system.settings`` and ``format(...)`` are names, not clauses.
            words.append(match.group() if not (qualified or called) else f".{match.group()}")
        else:
            i += 1
    return words, semicolons, first_semicolon


def _skip_quoted(sql: str, start: int, quote: str) -> int:
    """Index after the literal opened at ``start`` (backslash escapes and doubled quotes)."""
    i = start + 1
    while i < len(sql):
        char = sql[i]
        if char == "\\":
            i += 2
            continue
        if char == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    raise QueryRefused("unterminated quoted string or identifier")
