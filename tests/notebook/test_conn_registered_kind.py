"""A connection kind known only to the registry works like a built-in in the notebook.

The kinds here are registered by the tests themselves (nothing in ``nbinfra/`` names
them): one speaks SQL with its own bind style (``@name``, over a real SQLite database),
one does not. ``%%conn`` splits and binds by what each class says of itself.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import nbinfra
from nbinfra.connections import (
    BaseConnectionManager,
    ConnectionRegistry,
    QueryResult,
    check_health,
)
from nbinfra.connections.qdrant import QdrantConnectionManager
from nbinfra.errors import NbinfraError
from nbinfra.session import Session, use_session
from tests.notebook.conftest import TestingShell
from tests.notebook.test_conn_magic import write_resources


class AtSQLiteManager(BaseConnectionManager):
    """SQLite, binding ``@name`` (which sqlite3 reads natively from a dict)."""

    kind = "atsqlite"
    speaks_sql = True
    bind_style = "@name"
    max_workers = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.db: sqlite3.Connection | None = None
        self.seen: list[tuple[str, Any]] = []

    def _open_sync(self) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)

    def _close_sync(self) -> None:
        db, self.db = self.db, None
        if db is not None:
            db.close()

    def _ping_sync(self) -> str | None:
        return f"sqlite {sqlite3.sqlite_version}"

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        assert self.db is not None
        self.seen.append((query, params))
        cursor = self.db.execute(query, params or {})
        columns = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchall() if columns else []
        return QueryResult(columns, rows)


class EchoManager(BaseConnectionManager):
    """Not SQL: every cell is one request, echoed back with the params it got."""

    kind = "echotest"

    def _open_sync(self) -> None:
        pass

    def _close_sync(self) -> None:
        pass

    def _ping_sync(self) -> str | None:
        return "echo"

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return QueryResult(["query", "params"], [(query, params)])


class PluginVectors(QdrantConnectionManager):
    """A vector-store kind the registry alone knows (the real Qdrant local engine)."""

    kind = "vecplugin"


KINDS = {"atsqlite": AtSQLiteManager, "echotest": EchoManager, "vecplugin": PluginVectors}


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    for kind, cls in KINDS.items():
        ConnectionRegistry.register(kind, cls)
    write_resources(
        tmp_path,
        "default_connection: lite\nconnections:\n"
        "  lite:\n    kind: atsqlite\n  echo:\n    kind: echotest\n",
    )
    (tmp_path / "application-vector.yaml").write_text(
        "connections:\n  vec:\n    kind: vecplugin\n    location: ':memory:'\n"
    )
    fresh = Session(resources=tmp_path)
    try:
        with use_session(fresh):
            yield fresh
    finally:
        fresh.close()
        for kind in KINDS:
            ConnectionRegistry.unregister(kind)


def test_sql_kind_gets_splitting_and_its_own_binds(ip: TestingShell, session: Session) -> None:
    ip.user_ns["v"] = "x'); DROP TABLE t; --"
    ip.user_ns["n"] = 2
    result = ip.cell(
        "%%conn lite -o res\n"
        "CREATE TABLE t (s TEXT, k INT);\n"
        "INSERT INTO t VALUES (@v, @n); -- a comment; with @n\n"
        "SELECT s, k + 1 AS m, '@v' AS literal, ':n' AS colon FROM t WHERE k = @n"
    )
    assert result.rows == [("x'); DROP TABLE t; --", 3, "@v", ":n")]
    assert len(ip.user_ns["res"]) == 3  # three statements, three calls
    seen = ip.cell("import nbinfra\nnbinfra.conn('lite').manager.seen")
    assert [params for _, params in seen] == [None, {"v": ip.user_ns["v"], "n": 2}, {"n": 2}]
    with pytest.raises(NbinfraError, match="no variable missing is defined"):
        ip.cell("%%conn lite\nSELECT @missing")


def test_non_sql_kind_gets_the_cell_whole(ip: TestingShell, session: Session) -> None:
    ip.user_ns["extra"] = {"k": 1}
    result = ip.cell("%%conn echo --params extra\nfind a; then b :v @v")
    assert result.rows == [("find a; then b :v @v", {"k": 1})]
    with pytest.raises(UsageError, match="--autocommit is for SQL connections"):
        ip.cell("%%conn echo --autocommit\nfind a")


def test_bind_style_is_read_from_the_class() -> None:
    assert AtSQLiteManager.bind_names("select @a, @@version, '@b', :c, @a") == ["a"]
    assert AtSQLiteManager.split_script("select 1; select ';'") == ["select 1", "select ';'"]
    assert EchoManager.split_script("a; b") == ["a; b"]
    assert EchoManager.bind_names("select :a") == []
    duckdb = ConnectionRegistry.get("duckdb")
    assert duckdb.speaks_sql and duckdb.bind_names("select :a, x::int") == ["a"]
    assert not ConnectionRegistry.get("redis").speaks_sql


def test_registered_kinds_are_listed_and_checked(ip: TestingShell, session: Session) -> None:
    rows = {row[0]: row for row in ip.run_line_magic("conn", "list").rows}
    assert {name: row[1] for name, row in rows.items()} == {
        "lite": "atsqlite",
        "echo": "echotest",
        "vec": "vecplugin",
    }
    assert rows["lite"][3] == rows["echo"][3] == "ok"
    assert rows["vec"][3] == "not started"  # an in-process engine opens on first use
    status = ip.run_line_magic("conn", "health lite")
    assert status.ok and status.kind == "atsqlite"
    assert status.server_version == f"sqlite {sqlite3.sqlite_version}"
    report = check_health(session=session, start=True)  # the core's, no notebook in it
    assert sorted(report.connections) == ["echo", "lite", "vec"]
    assert all(st.ok for st in report.connections.values()), report
    assert report.connections["vec"].server_version.startswith("qdrant local mode")
    panel = nbinfra.widgets.health_panel(caches=False).wait(60)
    assert {row[1]: row[2] for row in panel.rows} == {
        "lite": "atsqlite",
        "echo": "echotest",
        "vec": "vecplugin",
    }


def test_registered_vector_store_works_through_the_facade(session: Session) -> None:
    vec = nbinfra.conn("vec")
    assert isinstance(vec.manager, PluginVectors) and vec.kind == "vecplugin"
    assert nbinfra.conn("vec").manager is vec.manager  # kept in the session
    vec.create_collection("docs", 3)
    vec.upsert("docs", ["a", "b"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [{"t": 1}, {"t": 2}])
    hits = vec.search("docs", [0.9, 0.1, 0.0], top_k=1)
    assert [(h.id, h.payload) for h in hits] == [("a", {"t": 1})]
    assert vec.count("docs") == 2


async def test_sql_is_refused_by_a_kind_that_does_not_speak_it(session: Session) -> None:
    from nbinfra.errors import QueryError

    with pytest.raises(QueryError, match="echotest does not speak SQL"):
        await EchoManager().sql("select 1")
    with pytest.raises(QueryError, match="echotest does not speak SQL"):
        nbinfra.conn("echo").sql("select 1")
    assert nbinfra.conn("lite").sql("select @a AS a", {"a": 3}).rows == [(3,)]
