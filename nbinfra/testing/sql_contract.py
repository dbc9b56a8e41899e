"""``SQLContract``: what a connection kind that speaks SQL must do, on its real engine.

It extends ``ConnectionContract`` (same ``manager`` fixture: a fresh, unconnected manager)
with the SQL promises ``%%conn`` and the Python API make: named binds in the kind's own
``bind_style`` that never touch string literals or comments and store hostile text
literally, a missing bind named in a one-line error, row counts, ``limit`` with
``truncated``, NULLs, DataFrame/Arrow/dict views, a refused statement that leaves the
connection usable, transactions where the manager offers them, a real IPython cell
split into statements and bound from the notebook's variables, and, for a kind with
``frames_by_name``, pandas DataFrames joined by name (``sql(..., frames=...)`` and a
``%%conn`` cell) and visible to that statement only. SQL goes through the
manager's ``sql()`` (``execute_query`` for most kinds; pgvector's ``execute_query`` is a
vector search)::

    from nbinfra.testing.sql_contract import SQLContract

    class TestMySQL(SQLContract):
        @pytest.fixture
        def manager(self, my_server):
            return MyManager(url=my_server.url)

Every test works in a table of its own (``table``), made with ``text_type`` and
``int_type`` columns and dropped afterwards, so a shared server is fine.

Optional, for a server engine (each test skips without its hook, saying why):

- ``slow_statement`` (runs for a minute: ``SELECT SLEEP(60)``) and ``running_statements``
  (what a *second* connection sees running: ``SHOW PROCESSLIST``, ``pg_stat_activity``):
  an interrupt of the synchronous facade must stop the statement on the server, and
  the connection must stay usable;
- ``unreachable`` (ConnectionContract's: nothing listening, short timeouts): a statement
  fails with ``ConnectionUnavailableError`` within the configured timeouts;
- ``secret`` with ``unreachable``, and ``secret_entry`` (the ``connections:`` entry of a
  configured connection holding it): the secret is absent from repr, str, errors, their
  cause chains, logs and ``%conn list``.

An engine whose tables take no constraints sets ``key_clause = ""`` and gives
``refused(table)``, a statement it refuses when it runs; one whose tables take no DELETE
sets ``deletes = False`` (Spark's file tables do both).
"""

from __future__ import annotations

import _thread
import logging
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from nbinfra.connections.base import ConnectionManager
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.testing.connection_contract import ConnectionContract

__all__ = ["HOSTILE", "SQLContract"]

HOSTILE = 'x\'); DROP TABLE users; -- "quoted" 50% :id @id ; \\'


class SQLContract(ConnectionContract):
    """The SQL tests; a subclass gives ``manager`` (see the module's docstring)."""

    text_type: ClassVar[str] = "VARCHAR(200)"
    int_type: ClassVar[str] = "INTEGER"
    slow_statement: ClassVar[str | None] = None  # runs for about a minute; None skips

    def running_statements(self, manager: ConnectionManager) -> list[str]:
        """The statements the server runs now, as seen from a second connection."""
        pytest.skip(f"{manager.kind}: no view of the server's running statements")

    def secret_entry(self) -> dict[str, Any] | None:
        """A ``connections:`` entry (``kind`` included) that holds ``secret``; None skips
        the ``%conn list`` part of the secret test."""
        return None

    key_clause: ClassVar[str] = " PRIMARY KEY"  # "" where tables take no constraints (Spark)
    deletes: ClassVar[bool] = True  # False where the default tables take no DELETE (Spark)

    def refused(self, table: str) -> str:
        """A statement the engine refuses when it runs, on ``table`` holding row id 0 (by
        default a duplicate key; an engine without keys gives one of its own)."""
        return f"INSERT INTO {table} (id, name) VALUES (0, 'duplicate')"

    def bind(self, manager: ConnectionManager, name: str) -> str:
        """``name`` as a placeholder in the manager's bind style (``:id``, ``@id``...)."""
        return type(manager).bind_style.replace("name", name)

    @pytest.fixture
    def table(self) -> str:
        return f"t_{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    async def db(self, manager: ConnectionManager, table: str) -> AsyncIterator[ConnectionManager]:
        """``manager`` connected, with ``table`` (id, name) created empty."""
        async with manager:
            await manager.sql(
                f"CREATE TABLE {table} (id {self.int_type}{self.key_clause}, name {self.text_type})"
            )
            try:
                yield manager
            finally:
                await manager.sql(f"DROP TABLE IF EXISTS {table}")

    async def _fill(self, db: ConnectionManager, table: str, n: int) -> None:
        values = ", ".join(f"({i}, 'n{i}')" for i in range(n))
        await db.sql(f"INSERT INTO {table} (id, name) VALUES {values}")

    # -- what the registry reads ------------------------------------------------------
    def test_the_class_says_it_speaks_sql(self, manager: ConnectionManager) -> None:
        cls = type(manager)
        a, b = self.bind(manager, "a"), self.bind(manager, "b")
        assert cls.speaks_sql
        assert cls.bind_names(f"SELECT {a}, '{b}', {a} -- {b}") == ["a"]
        assert cls.split_script("SELECT 1; SELECT ';' AS s;\n") == ["SELECT 1", "SELECT ';' AS s"]

    # -- binds ------------------------------------------------------------------------
    async def test_hostile_text_is_bound_literally(self, db: ConnectionManager, table: str) -> None:
        i, n = self.bind(db, "id"), self.bind(db, "name")
        for key in (1, 2):
            await db.sql(
                f"INSERT INTO {table} (id, name) VALUES ({i}, {n})", {"id": key, "name": HOSTILE}
            )
        found = await db.sql(f"SELECT name FROM {table} WHERE name = {n}", {"name": HOSTILE})
        assert [row[0] for row in found.rows] == [HOSTILE, HOSTILE]
        assert (await db.sql(f"SELECT count(*) FROM {table}")).scalar() == 2

    async def test_binds_inside_literals_and_comments_are_left_alone(
        self, db: ConnectionManager
    ) -> None:
        i = self.bind(db, "id")
        result = await db.sql(
            f"SELECT '{i}' AS lit, {i} AS v, '50%' AS pct /* {i} */ -- {i}", {"id": 7}
        )
        assert [tuple(row) for row in result.rows] == [(i, 7, "50%")]
        assert result.columns == ["lit", "v", "pct"]

    async def test_a_missing_bind_is_named(self, db: ConnectionManager, table: str) -> None:
        with pytest.raises(QueryError, match="nme") as info:
            await db.sql(
                f"SELECT id FROM {table} WHERE name = {self.bind(db, 'nme')}", {"name": "x"}
            )
        assert "\n" not in str(info.value)

    async def test_null_binds_and_reads_as_none(self, db: ConnectionManager, table: str) -> None:
        i, n = self.bind(db, "id"), self.bind(db, "name")
        await db.sql(f"INSERT INTO {table} (id, name) VALUES ({i}, {n})", {"id": 1, "name": None})
        result = await db.sql(f"SELECT id, name FROM {table}")
        assert [tuple(row) for row in result.rows] == [(1, None)]

    # -- results ----------------------------------------------------------------------
    async def test_rowcount_is_rows_affected(self, db: ConnectionManager, table: str) -> None:
        inserted = await db.sql(
            f"INSERT INTO {table} (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')"
        )
        assert inserted.rowcount == 3
        if not self.deletes:
            pytest.skip(f"{db.kind}'s default tables take no DELETE (the INSERT's count held)")
        deleted = await db.sql(f"DELETE FROM {table} WHERE id < 3")
        assert deleted.rowcount == 2

    async def test_limit_truncates_and_says_so(self, db: ConnectionManager, table: str) -> None:
        await self._fill(db, table, 30)
        result = await db.sql(f"SELECT id FROM {table} ORDER BY id", limit=10)
        assert [row[0] for row in result.rows] == list(range(10)) and result.truncated
        whole = await db.sql(f"SELECT id FROM {table} WHERE id < 5", limit=10)
        assert len(whole) == 5 and not whole.truncated

    async def test_dataframe_arrow_and_dicts(self, db: ConnectionManager, table: str) -> None:
        pytest.importorskip("pandas")
        pa = pytest.importorskip("pyarrow")
        await self._fill(db, table, 25)
        result = await db.sql(f"SELECT id AS a, name AS b FROM {table} ORDER BY id")
        frame = result.df()
        assert list(frame.columns) == ["a", "b"] and len(frame) == 25
        assert frame["b"].tolist()[:2] == ["n0", "n1"]
        table_ = result.arrow()
        assert isinstance(table_, pa.Table) and table_.num_rows == 25
        assert result.dicts()[3] == {"a": 3, "b": "n3"}

    async def test_a_refused_statement_leaves_the_connection_usable(
        self, db: ConnectionManager, table: str
    ) -> None:
        await self._fill(db, table, 1)
        with pytest.raises(QueryError) as info:
            await db.sql(self.refused(table))
        assert str(info.value) and "\n" not in str(info.value)
        assert (await db.sql(f"SELECT count(*) FROM {table}")).scalar() == 1
        assert db.is_healthy()

    async def test_script_returns_each_result(self, db: ConnectionManager, table: str) -> None:
        script = getattr(db, "execute_script", None)
        if script is None:
            pytest.skip(f"{db.kind} runs one statement per call (%%conn splits cells)")
        x = self.bind(db, "x")
        results = await script(
            f"INSERT INTO {table} (id, name) VALUES (1, 'a; b'); "
            f"SELECT name FROM {table}; SELECT {x} AS x",
            {"x": 5},
        )
        assert [[tuple(r) for r in res.rows] for res in results[1:]] == [[("a; b",)], [(5,)]]
        assert results[0].rowcount == 1

    async def test_transaction_commits_or_leaves_nothing(
        self, db: ConnectionManager, table: str
    ) -> None:
        transaction = getattr(db, "transaction", None)
        if transaction is None:
            pytest.skip(f"{db.kind}'s manager offers no transaction()")
        async with transaction():
            await db.sql(f"INSERT INTO {table} (id, name) VALUES (1, 'a')")
        with pytest.raises(QueryError):
            async with transaction():
                await db.sql(f"INSERT INTO {table} (id, name) VALUES (2, 'b')")
                await db.sql(f"INSERT INTO {table} (id, name) VALUES (1, 'again')")
        rows = await db.sql(f"SELECT id FROM {table}")
        assert [row[0] for row in rows.rows] == [1]

    # -- the notebook -----------------------------------------------------------------
    @pytest.fixture
    def notebook(self, db: ConnectionManager, tmp_path: Path) -> Iterator[Any]:
        """A real IPython shell with nbinfra loaded, in a session whose connection named
        by ``db``'s kind (``%%conn duckdb``) is ``db`` itself."""
        from IPython.core.interactiveshell import InteractiveShell

        from nbinfra.connections.sync import COMPONENT
        from nbinfra.session import Session, use_session

        for part in ("db", "vector", "external"):
            (tmp_path / f"application-{part}.yaml").write_text("connections: {}\n")
        session = Session(resources=tmp_path)
        session.get(COMPONENT, db.kind, lambda: db)
        shell = InteractiveShell.instance()
        with use_session(session):
            shell.run_line_magic("load_ext", "nbinfra")
            try:
                yield shell
            finally:
                shell.run_line_magic("unload_ext", "nbinfra")
                shell.user_ns.clear()
                shell.init_user_ns()  # type: ignore[no-untyped-call]

    def test_a_cell_is_split_and_bound_from_the_notebook(
        self, notebook: Any, db: ConnectionManager, table: str
    ) -> None:
        v, n = self.bind(db, "v"), self.bind(db, "n")
        notebook.user_ns.update(v=HOSTILE, n=2)
        run = notebook.run_cell(
            f"%%conn {db.kind} -o res\n"
            f"INSERT INTO {table} (id, name) VALUES ({n}, {v}); -- a comment; with {n}\n"
            f"SELECT name, id + 1 AS m, '{v};' AS lit FROM {table} WHERE id = {n}"
        )
        run.raise_error()
        assert [tuple(row) for row in run.result.rows] == [(HOSTILE, 3, f"{v};")]
        assert len(notebook.user_ns["res"]) == 2  # two statements, two results
        one = notebook.run_cell(
            f"%%conn {db.kind}\nSELECT count(*) AS n FROM {table} WHERE id = {n}"
        )
        one.raise_error()
        assert one.result.columns == ["n"] and one.result.scalar() == 1
        missing = notebook.run_cell(f"%%conn {db.kind}\nSELECT {self.bind(db, 'missing')}")
        assert missing.error_in_exec is not None
        assert "missing" in str(missing.error_in_exec)

    # -- DataFrames by name (kinds with ``frames_by_name``) -----------------------------
    def frames_kind(self, manager: ConnectionManager) -> Any:
        """pandas, for a kind that reads DataFrames by name (else the test is skipped)."""
        if not type(manager).frames_by_name:
            pytest.skip(f"{manager.kind} does not read DataFrames by name")
        return pytest.importorskip("pandas")

    async def test_a_frame_is_joined_by_name_for_one_statement(
        self, db: ConnectionManager, table: str
    ) -> None:
        pd = self.frames_kind(db)
        await self._fill(db, table, 3)
        name = f"f_{uuid.uuid4().hex[:10]}"
        query = f"SELECT t.name, f.score FROM {table} t JOIN {name} f ON f.id = t.id ORDER BY t.id"
        assert {name, table} <= {n.lower() for n in db.table_names(query)}
        assert db.table_names(f"WITH {name} AS (SELECT 1 AS id) SELECT id FROM {name}") == []
        frame = pd.DataFrame({"id": [0, 2], "score": [10, 30]})
        result = await db.sql(query, frames={name: frame})
        assert [tuple(row) for row in result.rows] == [("n0", 10), ("n2", 30)]
        with pytest.raises(QueryError) as info:  # visible to that statement only
            await db.sql(f"SELECT * FROM {name}")
        assert name in str(info.value) and "\n" not in str(info.value)

    def test_a_notebook_frame_is_joined_by_name(
        self, notebook: Any, db: ConnectionManager, table: str
    ) -> None:
        from nbinfra.connections.sync import SyncConnection

        pd = self.frames_kind(db)
        name = f"scores_{uuid.uuid4().hex[:8]}"
        notebook.user_ns[name] = pd.DataFrame({"id": [1, 2], "score": [10, 20]})
        filled = notebook.run_cell(
            f"%%conn {db.kind}\nINSERT INTO {table} (id, name) VALUES (1, 'a'), (2, 'b')"
        )
        filled.raise_error()
        query = f"SELECT t.name, s.score FROM {table} t JOIN {name} s ON s.id = t.id ORDER BY t.id"
        run = notebook.run_cell(f"%%conn {db.kind} -o res\n{query}")
        run.raise_error()
        assert [tuple(row) for row in notebook.user_ns["res"].rows] == [("a", 10), ("b", 20)]
        frame = pd.DataFrame({"id": [2], "score": [99]})
        again = SyncConnection(db).sql(query, frames={name: frame})
        assert [tuple(row) for row in again.rows] == [("b", 99)]
        notebook.user_ns[name] = [1, 2]  # no DataFrame: not passed, and the error says so
        wrong = notebook.run_cell(f"%%conn {db.kind}\n{query}")
        assert wrong.error_in_exec is not None
        assert "not a DataFrame" in str(wrong.error_in_exec)

    # -- scripts, interrupts, dead servers, secrets ---------------------------------------
    async def test_a_failed_script_leaves_no_rows(self, db: ConnectionManager, table: str) -> None:
        script = getattr(db, "execute_script", None)
        if script is None:
            pytest.skip(f"{db.kind} runs one statement per call (%%conn splits cells)")
        insert = f"INSERT INTO {table} (id, name) VALUES"
        with pytest.raises(QueryError) as info:
            await script(f"{insert} (1, 'a'); {insert} (2, 'b;c'); {insert} (1, 'duplicate')")
        assert "\n" not in str(info.value)
        assert (await db.sql(f"SELECT count(*) FROM {table}")).scalar() == 0
        assert db.is_healthy()

    def test_an_interrupt_cancels_the_statement_on_the_server(self, db: ConnectionManager) -> None:
        from nbinfra.connections.sync import SyncConnection

        slow = self.slow_statement
        if slow is None:
            pytest.skip(f"{db.kind}: no slow statement to interrupt")
        assert not self._running(db, slow)  # the hook is there (else this skips)
        seen = threading.Event()
        calling = threading.Event()

        def interrupt_once_running() -> None:
            deadline = time.monotonic() + 20
            while calling.is_set() and time.monotonic() < deadline:
                if self._running(db, slow):
                    seen.set()
                    if calling.is_set():
                        _thread.interrupt_main()
                    return
                time.sleep(0.05)

        conn = SyncConnection(db)
        watcher = threading.Thread(target=interrupt_once_running, daemon=True)
        calling.set()
        watcher.start()
        started = time.monotonic()
        try:
            with pytest.raises(KeyboardInterrupt) as info:
                conn.sql(slow)
        finally:
            calling.clear()
            watcher.join(25)
        assert seen.is_set(), "the slow statement never showed on the server"
        assert time.monotonic() - started < 30
        assert "\n" not in str(info.value)
        deadline = time.monotonic() + 5
        while self._running(db, slow) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self._running(db, slow), "the statement still runs on the server"
        assert len(conn.sql(self.query)) >= 1  # the connection stays usable
        assert db.is_healthy()

    def _running(self, db: ConnectionManager, statement: str) -> bool:
        return any(statement.strip() in (text or "") for text in self.running_statements(db))

    async def test_a_statement_on_a_dead_server_fails_within_its_timeout(
        self, unreachable: ConnectionManager
    ) -> None:
        s = unreachable.settings
        limit = s.connect_timeout * (s.retries + 1) + s.retry_max_backoff * s.retries + 2
        started = time.monotonic()
        with pytest.raises(ConnectionUnavailableError) as info:
            await unreachable.sql(self.query)
        assert time.monotonic() - started <= limit
        assert "\n" not in str(info.value)

    async def test_the_secret_never_shows(
        self, unreachable: ConnectionManager, caplog: pytest.LogCaptureFixture, tmp_path: Path
    ) -> None:
        secret = self.secret
        if not secret:
            pytest.skip("no secret in this backend's settings")
        caplog.set_level(logging.DEBUG, logger="nbinfra")
        with pytest.raises(ConnError) as info:
            await unreachable.sql(self.query)
        shown = {
            "repr": repr(unreachable),
            "settings": f"{unreachable.settings!r} {unreachable.settings}",
            "target": unreachable.target,
            "error": f"{info.value!r} {info.value}",
            "cause chain": "".join(traceback.format_exception(info.value)),
            "logs": caplog.text,
        }
        entry = self.secret_entry()
        if entry is not None:
            shown["%conn list"] = _conn_list(tmp_path, entry)
        leaks = [where for where, text in shown.items() if secret in text]
        assert not leaks, f"the secret shows in: {', '.join(leaks)}"


def _conn_list(folder: Path, entry: dict[str, Any]) -> str:
    """What ``%conn list`` shows (text and HTML) for a session with connection ``entry``."""
    import yaml
    from IPython.core.interactiveshell import InteractiveShell

    from nbinfra.session import Session, use_session

    (folder / "application-db.yaml").write_text(yaml.safe_dump({"connections": {"leaky": entry}}))
    for part in ("vector", "external"):
        (folder / f"application-{part}.yaml").write_text("connections: {}\n")
    session = Session(resources=folder)
    shell = InteractiveShell.instance()
    try:
        with use_session(session):
            shell.run_line_magic("load_ext", "nbinfra")
            try:
                table = shell.run_line_magic("conn", "list")
            finally:
                shell.run_line_magic("unload_ext", "nbinfra")
    finally:
        session.close()
    assert "leaky" in repr(table)
    return f"{table!r} {table._repr_html_()}"
