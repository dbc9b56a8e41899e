"""%conn list and health_panel(): every check at once, each bounded, refused ports at once,
targets as the connections use them. Real parts: private redis-server and nx-27017, real
refused and silent ports, real Qdrant and Chroma engines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbinfra
from nbinfra.session import Session, use_session
from nbinfra.testing import MongoServer, RedisServer, free_port
from tests.notebook.conftest import TestingShell
from tests.notebook.test_conn_magic import write_resources


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[Any]:
    """``configured(db_yaml, vector_yaml="")``: a fresh session over those resources."""
    sessions: list[Session] = []

    def make(db_yaml: str, vector_yaml: str = "") -> Session:
        folder = tmp_path / f"resources{len(sessions)}"
        folder.mkdir()
        write_resources(folder, db_yaml)
        if vector_yaml:
            (folder / "application-vector.yaml").write_text(vector_yaml)
        fresh = Session(resources=folder)
        sessions.append(fresh)
        return fresh

    yield make
    for fresh in sessions:
        fresh.close()


def rows_of(ip: TestingShell) -> dict[str, tuple[Any, ...]]:
    return {row[0]: row for row in ip.run_line_magic("conn", "list").rows}


def test_targets_are_what_the_connections_use(
    ip: TestingShell,
    configured: Any,
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The embedded MongoDB's folder is relative to the working directory: an empty one here,
    # so a server another test started under the repository's .nbinfra/mongodb is not this one.
    monkeypatch.chdir(tmp_path)
    # The shipped redis entry: REDIS_URL wins over host/port (6379 is not this server).
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    fresh = configured(
        "connections:\n  redis:\n    kind: redis\n    url: '${REDIS_URL:}'\n"
        "    host: localhost\n    port: 6379\n"
        "  mongodb:\n    kind: mongodb\n    url: '${MONGODB_URL:}'\n"
        "    embedded_dir: .nbinfra/mongodb\n"
    )
    monkeypatch.delenv("MONGODB_URL", raising=False)
    with use_session(fresh):
        rows = rows_of(ip)
        panel = nbinfra.widgets.health_panel(caches=False).wait(60)
    assert rows["redis"][2:4] == (redis_server.url, "ok"), rows["redis"]
    assert rows["mongodb"][2:4] == ("embedded (.nbinfra/mongodb)", "not started")
    targets = {row[1]: row[3] for row in panel.rows}
    assert targets == {"redis": redis_server.url, "mongodb": "embedded (.nbinfra/mongodb)"}


def test_checks_run_at_once_each_under_its_own_bound(
    ip: TestingShell, configured: Any, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbinfra.connections import health

    refused = free_port()
    silent = "".join(
        f"  hung{i}:\n    kind: mongodb\n    url: 'mongodb://127.0.0.1:{silent_port}/db'\n"
        "    connect_timeout: 30\n"
        for i in range(3)
    )
    fresh = configured(
        "connections:\n  duckdb:\n    database: ':memory:'\n"
        f"{silent}  gone:\n    kind: mongodb\n    url: 'mongodb://127.0.0.1:{refused}/db'\n"
        "    connect_timeout: 30\n"
    )
    monkeypatch.setattr(health, "LIST_BOUND", 1.0)
    with use_session(fresh):
        started = time.perf_counter()
        rows = rows_of(ip)
        took = time.perf_counter() - started
    # three hung servers, one after the other, would take 3 s
    assert took < 2.5, f"the listing took {took:.2f} s"
    assert rows["duckdb"][3] == "ok"
    for name in ("hung0", "hung1", "hung2"):
        assert rows[name][3] == "down"
        assert rows[name][5].startswith("no answer within 1 s; check that the service is up")
    assert rows["gone"][3] == "down" and "refused the connection" in rows["gone"][5]
    latency_ms = float(rows["gone"][4].removesuffix(" ms"))
    assert latency_ms < 500, "a refused port must not wait for pymongo's server selection"


def test_local_engines_open_on_first_use_not_in_the_listing(
    ip: TestingShell, configured: Any, tmp_path: Path
) -> None:
    chroma = tmp_path / "chroma"
    fresh = configured(
        "connections:\n  duckdb:\n    database: ':memory:'\n",
        "connections:\n  qdrant:\n    kind: qdrant\n    location: ':memory:'\n"
        f"  chromadb:\n    kind: chromadb\n    path: '{chroma}'\n",
    )
    with use_session(fresh):
        rows = rows_of(ip)
        for name in ("qdrant", "chromadb"):
            assert rows[name][3] == "not started", rows[name]
            assert rows[name][5] == f"starts on first use; %conn health {name} starts it now"
        assert not chroma.exists(), "the listing must not open the engine"
        status = ip.run_line_magic("conn", "health qdrant")
        assert status.ok and status.started
        rows = rows_of(ip)
        assert rows["qdrant"][3] == "ok" and rows["chromadb"][3] == "not started"


def test_health_panel_checks_caches_with_connections(
    ip: TestingShell, tmp_path: Path, mongo_server: MongoServer
) -> None:
    folder = write_resources(
        tmp_path,
        f"connections:\n  mongo:\n    kind: mongodb\n    url: '{mongo_server.url}/db'\n",
    )
    refused = free_port()
    (folder / "application-cache.yaml").write_text(
        f"cache:\n  backend: memory\n  redis:\n    url: redis://127.0.0.1:{refused}/0\n"
    )
    fresh = Session(resources=folder)
    try:
        with use_session(fresh):
            panel = nbinfra.widgets.health_panel().wait(60)
    finally:
        fresh.close()
    rows = {row[1]: row for row in panel.rows}
    assert set(rows) == {"mongo", "memory", "redis"}
    assert rows["mongo"][0] == "ok" and rows["mongo"][5] == "MongoDB 7.0.0 (nx-27017)"
    assert rows["memory"][0] == "ok"
    assert rows["redis"][0] == "down" and rows["redis"][5]


def test_health_panel_draws_at_once_and_fills_rows_as_checks_return(
    configured: Any, silent_port: int
) -> None:
    refused = free_port()
    fresh = configured(
        "connections:\n  duckdb:\n    database: ':memory:'\n"
        f"  hung:\n    kind: mongodb\n    url: 'mongodb://127.0.0.1:{silent_port}/db'\n"
        "    connect_timeout: 30\n"
        f"  dead:\n    kind: mongodb\n    url: 'mongodb://127.0.0.1:{refused}/db'\n"
        "    connect_timeout: 30\n"
    )
    with use_session(fresh):
        started = time.perf_counter()
        panel = nbinfra.widgets.health_panel(caches=False)
        took = time.perf_counter() - started
        first = {row[1]: row[0] for row in panel.rows}
        # the silent server takes the whole bound (2.5 s): its row is still being checked
        assert first["hung"] == "checking\u2026", first
        assert set(first) == {"duckdb", "hung", "dead"}
        assert "\u25cc checking\u2026" in panel.table.value
        panel.wait(30)
        done = {row[1]: row for row in panel.rows}
    assert took < 1.5, f"health_panel() took {took:.2f} s to return"
    assert done["duckdb"][0] == "ok"
    assert done["dead"][0] == "down" and "refused the connection" in done["dead"][5]
    assert done["hung"][0] == "down" and done["hung"][5].startswith("no answer within 2.5 s")
    assert "checking" not in panel.table.value and "checked " in panel.checked.value
