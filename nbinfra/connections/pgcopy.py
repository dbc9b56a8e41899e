"""COPY for PostgreSQL: bulk load (``copy_in``) and unload (``copy_out``) as CSV.

A mixin for ``PostgresConnectionManager`` (and managers built on it, such as pgvector):
it uses the manager's ``_call`` (timeouts, error translation) and ``_connection``.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg import sql as pgsql

from nbinfra.connections._parts import ManagerParts
from nbinfra.connections.base import is_read_only_sql
from nbinfra.errors import QueryError

__all__ = ["CopyMixin"]

T = TypeVar("T")


class CopyMixin(ManagerParts):
    """``copy_in`` / ``copy_out`` on a PostgreSQL manager."""

    if TYPE_CHECKING:  # provided by the manager

        def _connection(self) -> AbstractAsyncContextManager[Any]: ...

    async def copy_in(self, table: str, data: Any, *, columns: Sequence[str] | None = None) -> int:
        """Bulk-load ``data`` into ``table`` with COPY; returns the rows written.

        ``data``: a pandas DataFrame (its columns name the target columns), an iterable of
        row tuples, or a path to a CSV file with a header line.
        """
        return await self._call(
            lambda: self._copy_in(table, data, columns), what="COPY in", idempotent=False
        )

    async def _copy_in(self, table: str, data: Any, columns: Sequence[str] | None) -> int:
        target = _identifier(table)
        if hasattr(data, "to_csv") and hasattr(data, "columns"):
            columns = list(columns or [str(c) for c in data.columns])
            buffer = io.StringIO()
            data.to_csv(buffer, index=False, header=False)
            payload: Any = buffer.getvalue()
            fmt, count = "csv", len(data)
        elif isinstance(data, (str, Path)):
            payload = await asyncio.to_thread(Path(data).read_text, encoding="utf-8")
            fmt, count = "csv header", max(0, payload.count("\n") - 1)
        else:
            payload, fmt, count = None, "", 0
        cols: pgsql.Composable = pgsql.SQL("")
        if columns:
            cols = pgsql.SQL(" ({})").format(pgsql.SQL(", ").join(map(pgsql.Identifier, columns)))
        options = {"csv": "(FORMAT csv)", "csv header": "(FORMAT csv, HEADER true)", "": ""}[fmt]
        statement = pgsql.SQL("COPY {}{} FROM STDIN {}").format(target, cols, pgsql.SQL(options))
        async with self._connection() as conn, conn.cursor() as cur:
            async with cur.copy(statement) as copy:
                if payload is not None:
                    await copy.write(payload)
                else:
                    for row in _rows(data):
                        await copy.write_row(row)
                        count += 1
            return count if payload is None else max(cur.rowcount, 0) or count

    async def copy_out(self, query_or_table: str, destination: Any = None) -> bytes | int:
        """Unload a table or ``SELECT`` with COPY as CSV (with header).

        Returns the CSV bytes, or writes them to ``destination`` (a path or binary file)
        and returns the number of bytes written.
        """
        return await self._call(
            lambda: self._copy_out(query_or_table, destination),
            what="COPY out",
            idempotent=True,
        )

    async def _copy_out(self, query_or_table: str, destination: Any) -> bytes | int:
        text = query_or_table.strip().rstrip(";")
        if is_read_only_sql(text):
            source: pgsql.Composable = pgsql.SQL("({})").format(pgsql.SQL(text))
        else:
            source = _identifier(text)
        statement = pgsql.SQL("COPY {} TO STDOUT (FORMAT csv, HEADER true)").format(source)
        chunks: list[bytes] = []
        async with (
            self._connection() as conn,
            conn.cursor() as cur,
            cur.copy(statement) as copy,
        ):
            async for chunk in copy:
                chunks.append(bytes(chunk))
        data = b"".join(chunks)
        if destination is None:
            return data
        if isinstance(destination, (str, Path)):
            await asyncio.to_thread(Path(destination).write_bytes, data)
        else:
            destination.write(data)
        return len(data)


def _identifier(name: str) -> pgsql.Identifier:
    parts = [p.strip().strip('"') for p in name.split(".")]
    if not all(parts):
        raise QueryError(f"{name!r} is not a table name; use table or schema.table.")
    return pgsql.Identifier(*parts)


def _rows(data: Any) -> Iterable[Sequence[Any]]:
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise QueryError(
            "copy_in data must be a DataFrame, a path to a CSV file or an iterable of rows, "
            f"not {type(data).__name__}."
        )
    return data
