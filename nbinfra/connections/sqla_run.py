"""How the ``sql`` kind runs one statement and hands back its rows (see sqla.py).

- ``run_statement``: the statement through SQLAlchemy ``text()`` with its ``:name`` binds
  (found in the URL's dialect) as bound parameters; with a ``limit``, a server-side
  cursor (``stream_results``), MySQL's ``sql_select_limit`` capped at ``limit + 1`` and, on
  PostgreSQL in autocommit, a read-only transaction around the cursor.
- Rows come from the driver's cursor as its own tuples when SQLAlchemy would not change
  them (no result processors), else through SQLAlchemy's rows.
- ``SQLResult.df()`` is the frame ``pandas.read_sql`` builds from the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy

from nbinfra.connections.errormap import is_read_only_sql
from nbinfra.connections.sqla_text import DialectText
from nbinfra.connections.types import QueryResult
from nbinfra.errors import QueryError

__all__ = ["SQLResult", "all_rows", "bind_values", "read_sql_frame", "run_statement"]

_MYSQL = ("mysql", "mariadb")


class SQLResult(QueryResult):
    """Rows from the ``sql`` kind; ``df()`` is what ``pandas.read_sql`` makes of them."""

    def df(self) -> Any:
        return read_sql_frame(self.rows, self.columns)


def read_sql_frame(rows: list[tuple[Any, ...]], columns: list[str]) -> Any:
    """The DataFrame ``pandas.read_sql`` builds from these rows: pandas' own conversion
    (floats coerced from decimals, timezone-aware columns in UTC)."""
    try:
        from pandas.io.sql import _wrap_result
    except ImportError:  # a pandas without it: the public equivalent
        import pandas as pd

        return pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)
    return _wrap_result(rows, columns)


def run_statement(
    conn: Any, text: DialectText, backend: str, statement: str, params: Any, limit: int | None
) -> QueryResult:
    """One statement on ``conn`` (a SQLAlchemy ``Connection``), its ``:name`` binds found
    in ``text``'s dialect; at most ``limit + 1`` rows leave the server."""
    bound = bind_values(text.binds(statement), params)
    clause = sqlalchemy.text(text.for_text(statement))
    limited = limit is not None and is_read_only_sql(statement)
    capped = limited and backend in _MYSQL
    # PostgreSQL's server-side cursors live in a transaction: one around the read.
    wrapped = limited and idle_autocommit(conn.connection.dbapi_connection, backend)
    start = time.perf_counter()
    if capped:  # the server stops after limit + 1 rows
        conn.exec_driver_sql(f"SET SESSION sql_select_limit = {int(limit or 0) + 1}")
    if wrapped:
        conn.exec_driver_sql("BEGIN")
    try:
        options = {"stream_results": True} if limited else None
        result = conn.execute(clause, bound, execution_options=options)
        try:
            if not result.returns_rows:
                return SQLResult(
                    [],
                    [],
                    elapsed=time.perf_counter() - start,
                    rowcount=result.rowcount,
                    statement=statement,
                )
            columns = list(result.keys())
            if limit is None:
                rows = all_rows(result)
            else:
                rows = [tuple(row) for row in result.fetchmany(limit + 1)]
        finally:
            result.close()
    finally:
        if wrapped:
            conn.exec_driver_sql("ROLLBACK")  # a read: nothing to keep
        if capped:
            conn.exec_driver_sql("SET SESSION sql_select_limit = DEFAULT")
    truncated = limit is not None and len(rows) > limit
    return SQLResult(
        columns,
        rows[:limit] if truncated else rows,
        elapsed=time.perf_counter() - start,
        statement=statement,
        truncated=truncated,
    )


def bind_values(names: list[str], params: Any) -> Any:
    """The values of ``names`` from ``params`` (a mapping, or a list of them for
    executemany); a name without a value is a one-line ``QueryError``."""
    if params is None:
        params = {}
    if isinstance(params, Mapping):
        missing = [n for n in names if n not in params]
        if missing:
            given = ", ".join(sorted(map(str, params))) or "none"
            raise QueryError(
                f"The query uses parameter(s) {', '.join(missing)} that were not given "
                f"(given: {given})."
            )
        return {n: params[n] for n in names}
    many = isinstance(params, Sequence) and not isinstance(params, str | bytes) and params
    if many and all(isinstance(p, Mapping) for p in params):
        return [bind_values(names, p) for p in params]
    raise QueryError(
        "sql parameters are a mapping of :name values (or a list of them), "
        f"not {type(params).__name__}."
    )


def all_rows(result: Any) -> list[tuple[Any, ...]]:
    """Every row as the driver's own tuples when SQLAlchemy would not change them (no
    result processors, plain cursor fetch); else through SQLAlchemy's rows."""
    metadata = getattr(result, "_metadata", None)
    plain = type(getattr(result, "cursor_strategy", None)).__name__ == "CursorFetchStrategy"
    cursor = getattr(result, "cursor", None)
    if plain and cursor is not None and getattr(metadata, "_effective_processors", 1) is None:
        rows = cursor.fetchall()
        if rows and not isinstance(rows[0], tuple):  # pyodbc's Row, say
            return [tuple(row) for row in rows]
        return rows if isinstance(rows, list) else list(rows)
    return [tuple(row) for row in result.fetchall()]


def idle_autocommit(dbapi: Any, backend: str) -> bool:
    """A PostgreSQL DB-API connection in autocommit mode with no transaction open."""
    if backend != "postgresql" or getattr(dbapi, "autocommit", False) is not True:
        return False
    info = getattr(dbapi, "info", None)  # psycopg 3
    status = getattr(info, "transaction_status", None)
    if status is None and callable(getattr(dbapi, "get_transaction_status", None)):
        status = dbapi.get_transaction_status()  # psycopg2: 0 is idle
    return status is not None and int(status) == 0
