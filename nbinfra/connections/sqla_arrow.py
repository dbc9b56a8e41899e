"""Results through Arrow, where a driver can give them, for the ``sql`` kind.

Measured (benchmarks/bench_sql.py): SQLite 1M rows x 5 columns read by ADBC's SQLite
driver (``adbc-driver-sqlite``) in 0.3 s where sqlite3's cursor and pandas take 1.2 s;
MariaDB 200k rows x 5 columns read by connectorx in 0.2 s where PyMySQL and pandas take
1.1 s. So a single read-only statement without binds or ``limit``, outside a transaction,
goes through one of them when it is installed (``arrow: false`` in the settings turns it
off), and the result keeps the Arrow table: ``arrow()`` is that table, ``df()`` converts
it, ``rows`` are made from it on first use.

The frame must be the one ``pandas.read_sql`` gives, so only columns whose conversion is
known to match are taken: integers (int64; with NULLs float64), floats (float64),
strings, dates (``datetime.date`` objects), timestamps in microseconds without a zone
and, from ADBC, decimals (float64). Anything else (booleans, binary, times, a column that
is all NULL, an empty result, connectorx's decimals, which lose the column's scale) and
any error make the statement run again through the cursor, which gives the driver's own
rows, types and error messages.

An interrupt cancels the read: ADBC's ``adbc_cancel()``; on MySQL ``KILL QUERY`` for
the connection whose statement carries this read's marker comment.
"""

from __future__ import annotations

import collections
import importlib.util
import time
import uuid
from typing import Any
from urllib.parse import quote

from nbinfra.connections.sqla_engine import Running, kill_marked
from nbinfra.connections.sqla_run import SQLResult

__all__ = ["ArrowResult", "arrow_reader"]

_INT64_MAX = 2**63 - 1


class ArrowResult(SQLResult):
    """A result held as an Arrow table; ``rows`` are built from it when first read."""

    def __init__(self, table: Any, frame: Any, *, elapsed: float, statement: str) -> None:
        self._table = table
        self._frame = frame
        self._rows: list[tuple[Any, ...]] | None = None
        super().__init__(
            list(table.column_names),
            [],
            elapsed=elapsed,
            rowcount=table.num_rows,
            statement=statement,
        )

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            columns = [column.to_pylist() for column in self._table.columns]
            self._rows = list(zip(*columns, strict=True))
        return self._rows

    @rows.setter
    def rows(self, value: list[tuple[Any, ...]]) -> None:
        self._rows = value or None

    def head(self, n: int) -> list[tuple[Any, ...]]:
        """The first ``n`` rows, converted from the Arrow table alone."""
        if self._rows is not None or self._table is None:
            return list(self.rows[:n])
        part = self._table.slice(0, n)
        return list(zip(*(c.to_pylist() for c in part.columns), strict=True))

    def __len__(self) -> int:
        return int(self.rowcount or 0)

    def df(self) -> Any:
        """The frame ``pandas.read_sql`` gives for this result (a fresh copy each call)."""
        return self._frame.copy()

    def arrow(self) -> Any:
        return self._table

    def pl(self) -> Any:
        """A Polars DataFrame over the Arrow table (no copy through Python rows)."""
        from nbinfra.connections.types import import_polars

        return import_polars().from_arrow(self._table)

    def __repr__(self) -> str:
        return (
            f"QueryResult({self.rowcount} rows x {len(self.columns)} columns "
            f"[{', '.join(self.columns[:8])}], via Arrow, elapsed={self.elapsed * 1000:.1f} ms)"
        )


def read_sql_like(table: Any, *, decimals: bool) -> Any:
    """``table`` as the DataFrame ``pandas.read_sql`` makes of the same values, or None when
    a column's conversion is not known to match (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return None
    columns = []
    for column in table.columns:
        kind = column.type
        if column.null_count == len(column):
            return None  # read_sql: an object column of None
        if pa.types.is_integer(kind):
            if column.null_count:
                column = column.cast(pa.float64())
            elif kind != pa.int64():
                if kind == pa.uint64() and pc.max(column).as_py() > _INT64_MAX:
                    return None
                column = column.cast(pa.int64())
        elif pa.types.is_floating(kind) or (decimals and pa.types.is_decimal(kind)):
            column = column.cast(pa.float64())
        elif pa.types.is_timestamp(kind):
            if kind.tz is not None or kind.unit != "us":
                return None
        elif not (
            pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_date32(kind)
        ):
            return None
        columns.append(column)
    return pa.table(columns, names=table.column_names).to_pandas()


def arrow_reader(url: Any, engine: Any, connect_args: dict[str, Any]) -> ArrowReader | None:
    """The Arrow reader for SQLAlchemy ``url`` when its package is installed, else None."""
    backend, found = url.get_backend_name(), importlib.util.find_spec
    if not (found("pyarrow") and found("pandas")):
        return None
    plain = not url.query  # options in the URL: the cursor, which reads them all
    if backend == "sqlite" and plain and url.database not in (None, "", ":memory:"):
        return SQLiteADBC(url.database) if found("adbc_driver_sqlite") else None
    mysql = backend in ("mysql", "mariadb") and url.get_driver_name() in ("pymysql", "mysqldb")
    if mysql and plain and url.host and found("connectorx"):
        return MySQLConnectorX(url, engine, connect_args)
    return None


class ArrowReader:
    """Reads one statement into an Arrow table on the calling (worker) thread.

    A statement whose columns did not convert (a DECIMAL from connectorx, say) is
    remembered, so running it again goes straight to the cursor instead of reading twice.
    """

    decimals = True  # whether its decimal columns keep their values (see read_sql_like)
    REMEMBERED = 256  # statements known to need the cursor

    def __init__(self) -> None:
        self._cursor_only: collections.OrderedDict[str, None] = collections.OrderedDict()

    def read(self, statement: str, running: Running) -> Any:
        raise NotImplementedError

    def result(self, statement: str, running: Running) -> ArrowResult | None:
        """The statement's result, or None: then the cursor runs it (see the docstring)."""
        if statement in self._cursor_only:
            return None
        start = time.perf_counter()
        try:
            table = self.read(statement, running)
        except Exception:  # noqa: BLE001 - the cursor runs it again and reports the error
            return None
        frame = read_sql_like(table, decimals=self.decimals)
        if frame is None:
            self._cursor_only[statement] = None
            while len(self._cursor_only) > self.REMEMBERED:
                self._cursor_only.popitem(last=False)
            return None
        return ArrowResult(table, frame, elapsed=time.perf_counter() - start, statement=statement)


class SQLiteADBC(ArrowReader):
    """ADBC's SQLite driver on the database file (a connection per read: they are not
    shared between threads, and opening one costs well under a millisecond)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def read(self, statement: str, running: Running) -> Any:
        import adbc_driver_sqlite.dbapi as adbc

        with adbc.connect(self.path) as conn, conn.cursor() as cursor:
            running.cancel = cursor.adbc_cancel
            try:
                cursor.execute(statement)
                return cursor.fetch_arrow_table()
            finally:
                running.cancel = None


class MySQLConnectorX(ArrowReader):
    """connectorx on a MySQL/MariaDB URL; its decimals come back at scale 10 whatever the
    column's, so a result with one runs again through the cursor."""

    decimals = False

    def __init__(self, url: Any, engine: Any, connect_args: dict[str, Any]) -> None:
        super().__init__()
        user = quote(url.username or "", safe="")
        password = f":{quote(url.password, safe='')}" if url.password else ""
        port = f":{url.port}" if url.port else ""
        self.url = f"mysql://{user}{password}@{url.host}{port}/{url.database or ''}"
        self.engine = engine
        self.connect_args = connect_args

    def read(self, statement: str, running: Running) -> Any:
        import connectorx

        marker = f"nbinfra-{uuid.uuid4().hex}"

        def cancel() -> None:
            kill_marked(self.engine, marker, self.connect_args)

        running.cancel = cancel
        try:
            return connectorx.read_sql(self.url, f"/* {marker} */ {statement}", return_type="arrow")
        finally:
            running.cancel = None
