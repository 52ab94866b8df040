"""The first lock of `analytics query`: one SELECT/WITH statement, nothing that acts outside."""

from __future__ import annotations

import pytest

from llama_mapper.analytics import QueryRefused, check_select


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", "SELECT 1"),
        ("  select count() from events;  ", "select count() from events"),
        ("WITH t AS (SELECT 1) SELECT * FROM t", "WITH t AS (SELECT 1) SELECT * FROM t"),
        ("SELECT ';' AS semi", "SELECT ';' AS semi"),
        ("SELECT 'it''s; DROP' AS x", "SELECT 'it''s; DROP' AS x"),
        ("SELECT format('{}', 1) FROM system.settings", None),
        ("/* note */ SELECT 1 -- trailing; comment", None),
        ("SELECT `format` FROM events", None),
    ],
)
def test_single_selects_pass(sql: str, expected: str | None) -> None:
    statement = check_select(sql)
    assert statement.endswith("\n")  # a trailing comment cannot swallow the client's FORMAT
    assert statement.strip() == (expected or sql.strip())


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("INSERT INTO events (tenant_id) VALUES ('x')", "not INSERT"),
        ("DROP TABLE events", "not DROP"),
        ("ALTER TABLE events DELETE WHERE 1", "not ALTER"),
        ("SELECT 1; DROP TABLE events", "only one statement"),
        ("SELECT 1;;", "only one statement"),
        ("SELECT 1 INTO OUTFILE '/tmp/x.csv'", "INTO OUTFILE"),
        ("SELECT 1 FORMAT JSON", "FORMAT clause"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS clause"),
        ("SET readonly = 0", "not SET"),
        ("", "empty"),
        ("-- only a comment", "empty"),
        ("SELECT 'open", "unterminated"),
        ("SELECT 1 /* open", "unterminated"),
        ("SHOW TABLES", "not SHOW"),
    ],
)
def test_everything_else_is_refused_with_a_reason(sql: str, reason: str) -> None:
    with pytest.raises(QueryRefused, match=reason):
        check_select(sql)
