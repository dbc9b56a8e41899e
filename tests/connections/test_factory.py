"""Factory, registry, ``connections:`` configuration and the ``nbinfra.conn`` facade."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import nbinfra
from nbinfra.config import Settings, load_settings
from nbinfra.connections import (
    ConnectionFactory,
    ConnectionRegistry,
    ConnectionType,
    SyncConnection,
    configured_connections,
)
from nbinfra.connections.duckdb import DuckDBConnectionManager
from nbinfra.connections.postgres import PostgresConnectionManager
from nbinfra.errors import ConfigError, MissingSettingError, UnknownKindError
from nbinfra.session import Session, use_session

ROOT = Path(__file__).resolve().parents[2]


def settings(connections: dict[str, object], **top: object) -> Settings:
    return Settings.from_dict({"connections": connections, **top}, environ={})


def test_connection_type_has_the_seed_values_and_duckdb() -> None:
    assert {t.value for t in ConnectionType} == {
        "postgres", "mongodb", "redis", "qdrant", "pgvector", "chromadb",
        "confluence", "jira", "s3", "duckdb", "sql", "spark",
    }  # fmt: skip
    assert ConnectionType.POSTGRES == "postgres" and str(ConnectionType.DUCKDB) == "duckdb"


def test_seed_snippet_by_kind() -> None:
    mgr = ConnectionFactory.get_connection_manager(ConnectionType.POSTGRES, settings=settings({}))
    assert isinstance(mgr, PostgresConnectionManager)
    assert mgr.name == "postgres" and mgr.kind == "postgres"
    assert ConnectionRegistry.get("postgresql") is PostgresConnectionManager  # alias


def test_configured_name_takes_its_settings_and_overrides(tmp_path: Path) -> None:
    cfg = settings(
        {"analytics": {"kind": "duckdb", "database": str(tmp_path / "a.duckdb"), "timeout": "7"}}
    )
    mgr = ConnectionFactory.get_connection_manager("analytics", settings=cfg, retries=0)
    assert isinstance(mgr, DuckDBConnectionManager)
    assert mgr.name == "analytics"
    assert mgr.settings.database == str(tmp_path / "a.duckdb")
    assert mgr.settings.timeout == 7.0 and mgr.settings.retries == 0


def test_name_defaults_kind_when_it_is_a_kind() -> None:
    mgr = ConnectionFactory.get_connection_manager("duckdb", settings=settings({"duckdb": None}))
    assert isinstance(mgr, DuckDBConnectionManager)


def test_unknown_name_lists_names_and_kinds() -> None:
    with pytest.raises(UnknownKindError) as info:
        ConnectionFactory.get_connection_manager("analytcs", settings=settings({"analytics": {}}))
    text = str(info.value)
    assert "analytics" in text and "duckdb" in text and "Did you mean 'analytics'" in text


def test_unknown_kind_of_a_configured_name() -> None:
    with pytest.raises(UnknownKindError, match="Did you mean 'duckdb'"):
        ConnectionFactory.get_connection_manager("x", settings=settings({"x": {"kind": "duckbd"}}))


def test_bad_setting_names_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"connections\.db\.timeout"):
        ConnectionFactory.get_connection_manager(
            "db", settings=settings({"db": {"kind": "duckdb", "timeout": "soon"}})
        )


def test_unset_variable_fails_only_when_that_connection_is_created() -> None:
    cfg = Settings.from_dict(
        {
            "connections": {
                "prod": {"kind": "postgres", "url": "${PROD_DB_URL}"},
                "local": {"kind": "duckdb"},
            }
        },
        environ={},
    )
    ConnectionFactory.get_connection_manager("local", settings=cfg)
    with pytest.raises(MissingSettingError, match="PROD_DB_URL"):
        ConnectionFactory.get_connection_manager("prod", settings=cfg)
    assert configured_connections(cfg)["prod"].target == "${PROD_DB_URL} (unset)"


def test_configured_connections_are_masked(tmp_path: Path) -> None:
    (tmp_path / "application-db.yaml").write_text(
        "connections:\n"
        "  warehouse:\n"
        "    kind: postgres\n"
        "    url: postgresql://app:pw-Xy81-secret@db.internal:5432/sales\n"
        "  local:\n"
        "    kind: duckdb\n"
    )
    (tmp_path / "application-vector.yaml").write_text("connections:\n  vectors: {kind: qdrant}\n")
    # The shipped application-external.yaml configures jira/confluence/s3; keep it out.
    (tmp_path / "application-external.yaml").write_text("connections: {}\n")
    specs = configured_connections(load_settings(tmp_path))
    assert list(specs) == ["local", "vectors", "warehouse"]
    warehouse = specs["warehouse"]
    assert warehouse.kind == "postgres"
    assert warehouse.target == "postgresql://app:********@db.internal:5432/sales"
    assert "pw-Xy81-secret" not in repr(specs) and "pw-Xy81-secret" not in str(warehouse.options)
    assert specs["vectors"].file.endswith("application-vector.yaml")


def test_names_are_unique_across_files(tmp_path: Path) -> None:
    (tmp_path / "application-db.yaml").write_text("connections:\n  main: {kind: duckdb}\n")
    (tmp_path / "application-external.yaml").write_text("connections:\n  main: {kind: s3}\n")
    with pytest.raises(ConfigError, match=r"connections\.main.* is defined in both"):
        load_settings(tmp_path)
    # Different keys under one name would merge silently in the loader: refused here.
    (tmp_path / "application-external.yaml").write_text(
        "connections:\n  main: {database: x.duckdb}\n"
    )
    with pytest.raises(ConfigError, match="'main' is defined in several files"):
        configured_connections(load_settings(tmp_path))


def test_shipped_defaults_describe_embedded_engines() -> None:
    specs = configured_connections(load_settings(ROOT / "nbinfra" / "resources", environ={}))
    assert specs["duckdb"].target == ":memory:"
    assert specs["postgres"].target == "embedded (.nbinfra/pgdata)"


# -- nbinfra.conn ---------------------------------------------------------------------
@pytest.fixture
def session(tmp_path: Path) -> Session:
    cfg = settings(
        {"duckdb": {"database": str(tmp_path / "facade.duckdb")}, "mem": {"kind": "duckdb"}},
        default_connection="duckdb",
    )
    fresh = Session(cfg)
    with use_session(fresh):
        yield fresh
    fresh.close()


def test_conn_facade_queries_and_is_kept_in_the_session(session: Session) -> None:
    db = nbinfra.conn()
    assert isinstance(db, SyncConnection) and db.name == "duckdb"
    db.query("CREATE TABLE t AS SELECT 1 AS x")
    assert db.query("SELECT x + :y FROM t", {"y": 1}).scalar() == 2
    assert nbinfra.conn("duckdb").manager is db.manager
    assert session.names("connection") == ["duckdb"]
    assert db.health().ok and db.is_healthy()
    assert nbinfra.conn("mem").manager is not db.manager


def test_conn_facade_forwards_coroutines_and_plain_methods(session: Session) -> None:
    pd = pytest.importorskip("pandas")
    db = nbinfra.conn("mem")
    db.register("frame", pd.DataFrame({"a": [1, 2]}))  # plain method
    assert db.tables() == ["frame"]  # coroutine method, run synchronously
    assert db.query("SELECT sum(a) FROM frame").scalar() == 3
    assert "register" in dir(db)


def test_duckdb_facade_runs_on_the_caller_thread(session: Session) -> None:
    db = nbinfra.conn("mem")
    db.query("SELECT 1")
    assert db.manager._executor is None
    assert threading.active_count() >= 1


def test_session_close_disconnects(tmp_path: Path) -> None:
    fresh = Session(settings({"d": {"kind": "duckdb"}}))
    with use_session(fresh):
        db = nbinfra.conn("d")
        db.query("SELECT 1")
        assert db.manager.connected
    fresh.close()
    assert not db.manager.connected


def test_importing_connections_loads_no_driver() -> None:
    code = (
        "import sys, nbinfra, nbinfra.connections\n"
        "nbinfra.conn\n"
        "heavy = {'duckdb', 'psycopg', 'psycopg_pool', 'pandas', 'pyarrow', 'numpy'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_create_takes_a_session_and_the_seed_names_are_aliases(tmp_path: Path) -> None:
    from nbinfra.connections import factory, get_connection_manager

    (tmp_path / "application-db.yaml").write_text(
        "connections:\n  notes:\n    kind: duckdb\n    database: ':memory:'\n    timeout: 7\n"
    )
    own = Session(resources=tmp_path)
    try:
        made = factory.create("notes", session=own, read_only=False)
        assert isinstance(made, DuckDBConnectionManager) and made.settings.timeout == 7
        assert ConnectionFactory.create("notes", session=own).name == "notes"
        # the default session knows no 'notes': the name came from the session given
        with pytest.raises(UnknownKindError, match="No connection named or of kind 'notes'"):
            factory.create("notes")
        assert get_connection_manager is factory.create
        assert ConnectionFactory.get_connection_manager("notes", session=own).settings.timeout == 7
        assert nbinfra.conn("notes", session=own).manager is own.get(
            "connection", "notes", lambda: made
        )
    finally:
        own.close()
