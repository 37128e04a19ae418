"""Prebuilt ``text`` statements run straight through the driver on the hot paths.

``rows(conn, statement, params)`` runs one in the connection's transaction; ``pick``
chooses a statement's (SQLite, PostgreSQL) variant.
"""

from __future__ import annotations

import re

from psycopg.pq import ExecStatus
from sqlalchemy import Connection
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect


def pick(variants: tuple, pg: bool):
    """``variants`` is (SQLite statement, PostgreSQL statement)."""
    return variants[1] if pg else variants[0]


_DRIVER_SQL: dict[TextClause | TextualSelect, str] = {}
_PARAM = re.compile(r"(?<![:\w]):(\w+)")


def rows(
    conn: Connection, statement: TextClause | TextualSelect, params: dict | None = None
) -> list[tuple]:
    """Run one of these ``text`` statements in the connection's transaction; its rows.

    On PostgreSQL it goes straight to the driver (psycopg): for statements this small,
    SQLAlchemy's execution and result machinery costs more CPU than the database does.
    Parameters and rows need no conversion there (timestamps are timezone-aware both
    ways); on SQLite the statement's SQLAlchemy types do the converting.
    """
    if conn.dialect.name != "postgresql":
        return [tuple(row) for row in conn.execute(statement, params or {})]
    sql = _DRIVER_SQL.get(statement)
    if sql is None:
        source = getattr(statement, "element", statement).text  # TextualSelect: its text
        assert "%" not in source, "psycopg reads % as a placeholder"
        sql = _DRIVER_SQL[statement] = _PARAM.sub(r"%(\1)s", source)
    with conn.connection.driver_connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        # (the result's status, not ``cursor.description``: that builds a column object
        # per column, which costs more than fetching these rows)
        result = cursor.pgresult
        return cursor.fetchall() if result and result.status == ExecStatus.TUPLES_OK else []
