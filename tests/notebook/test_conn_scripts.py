"""``%%conn`` scripts are all or nothing (real DuckDB and embedded PostgreSQL, real shell)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from nbinfra.errors import QueryError
from nbinfra.session import Session, use_session
from nbinfra.testing import PostgresServer
from tests.notebook.conftest import TestingShell
from tests.notebook.test_conn_magic import write_resources

FAILS_MIDWAY = {
    "duckdb": "INSERT INTO m VALUES (1); SELECT error('x'); INSERT INTO m VALUES (2)",
    "pg": "INSERT INTO m VALUES (1); SELECT 1/0; INSERT INTO m VALUES (2)",
}


@pytest.fixture(params=["duckdb", "pg"])
def name(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A session with the connection ``name`` and an empty table ``m`` on it."""
    db_yaml = "default_connection: duckdb\nconnections:\n  duckdb:\n    database: ':memory:'\n"
    if request.param == "pg":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        db_yaml += f"  pg:\n    kind: postgres\n    url: '{server.url}'\n"
    fresh = Session(resources=write_resources(tmp_path, db_yaml))
    with use_session(fresh):
        yield request.param
    fresh.close()


def _count(ip: TestingShell, name: str) -> int:
    return int(ip.cell(f"%%conn {name}\nSELECT count(*) FROM m").scalar())


def test_a_failing_cell_writes_nothing_and_the_next_cell_works(ip: TestingShell, name: str) -> None:
    ip.cell(f"%%conn {name}\nDROP TABLE IF EXISTS m; CREATE TABLE m (i int)")
    with pytest.raises(QueryError) as info:
        ip.cell(f"%%conn {name}\n{FAILS_MIDWAY[name]}")
    assert len(info.value._render_traceback_()) == 1
    assert _count(ip, name) == 0
    error = "error('x')" if name == "duckdb" else "1/0"
    with pytest.raises(QueryError):
        ip.cell(f"%%conn {name}\nBEGIN; INSERT INTO m VALUES (1); SELECT {error}; COMMIT")
    assert _count(ip, name) == 0  # and no "current transaction is aborted"
    ip.cell(f"%%conn {name} --limit 1\nINSERT INTO m VALUES (5); SELECT * FROM m")
    assert _count(ip, name) == 1


def test_autocommit_opts_out(ip: TestingShell, name: str) -> None:
    ip.cell(f"%%conn {name}\nDROP TABLE IF EXISTS m; CREATE TABLE m (i int)")
    with pytest.raises(QueryError):
        ip.cell(f"%%conn {name} --autocommit\n{FAILS_MIDWAY[name]}")
    assert _count(ip, name) == 1
    with pytest.raises(UsageError, match="--autocommit"):
        ip.run_line_magic("conn", "--autocommit list")
