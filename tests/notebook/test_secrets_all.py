"""The secret sentinel in every connection and LLM credential: never in any output."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import nbinfra
from nbinfra.session import Session, use_session
from nbinfra.testing import PostgresServer, RedisServer, free_port
from nbinfra.testing_llm import Fault, LLMWireServer
from tests.notebook.conftest import TestingShell
from tests.notebook.test_conn_magic import write_resources
from tests.notebook.test_secrets import SENTINEL, _run, _widget_state


@pytest.fixture
def wire() -> Iterator[LLMWireServer]:
    with LLMWireServer("openai") as server:
        yield server


def _llm_session(folder: Path, wire: LLMWireServer, dead: int) -> Iterator[Session]:
    """The sentinel as every provider's key, then a session on ``folder`` for the test."""
    (folder / "application-llm.yaml").write_text(
        "llm:\n  default: fake\n  max_retries: 0\n  timeout: 3\n  providers:\n"
        f"    openai:\n      api_key: {SENTINEL}\n      base_url: {wire.base_url('openai')}\n"
        f"    groq:\n      api_key: {SENTINEL}\n      base_url: http://127.0.0.1:{dead}/v1\n"
        f"    anthropic:\n      api_key: {SENTINEL}\n"
        f"      base_url: http://127.0.0.1:{dead}\n"
    )
    fresh = Session(resources=folder)
    with use_session(fresh):
        yield fresh
    fresh.close()


@pytest.fixture
def secrets(tmp_path: Path, wire: LLMWireServer) -> Iterator[Session]:
    dead = free_port()
    write_resources(
        tmp_path,
        "default_connection: duckdb\nconnections:\n"
        "  duckdb:\n    database: ':memory:'\n"
        "  pg:\n    kind: postgres\n"
        f"    url: postgresql://admin:{SENTINEL}@127.0.0.1:{dead}/db?password={SENTINEL}\n"
        "    connect_timeout: 1\n    retries: 0\n",
    )
    (tmp_path / "application-cache.yaml").write_text(
        f"cache:\n  redis:\n    url: redis://u:{SENTINEL}@127.0.0.1:{dead}/0\n"
    )
    yield from _llm_session(tmp_path, wire, dead)


def _last_traceback(ip: TestingShell, wire: LLMWireServer) -> str:
    """The full traceback of a failing call, as IPython would print it."""
    wire.push(Fault.unauthorized(f"Incorrect API key provided: {SENTINEL}"))
    try:
        ip.cell("%%llm -p openai\nonce more")
    except Exception as exc:  # noqa: BLE001 - rendered as IPython would
        lines = exc._render_traceback_()  # type: ignore[attr-defined]
        assert len(lines) > 1 and any("Traceback" in line for line in lines)
        return "\n".join(lines)
    raise AssertionError("expected an error")


def test_no_output_shows_a_credential(
    ip: TestingShell, secrets: Session, wire: LLMWireServer
) -> None:
    seen: list[str] = []
    wire.push(Fault.unauthorized(f"Incorrect API key provided: {SENTINEL}"))
    for cell in (
        "%conn list",
        "%conn health",
        "%conn health pg",
        "%conn pg SELECT 1",
        "%%conn pg\nSELECT 1",
        "%conn use pg",
        "%llm list",
        "%%llm -p openai\nhello",
        "%%llm -p groq --no-stream\nhello",
        "%%llm -p openai -o r\nhello",
        "%llm usage",
        "%cache use redis",
        "%cache set k 1",
    ):
        _run(ip, cell, seen)
    ip.run_line_magic("config", "NbinfraMagics.short_errors = False")
    seen.append(_last_traceback(ip, wire))
    seen.append(_widget_state(nbinfra.widgets.health_panel().wait(60)))
    seen.append(_widget_state(nbinfra.widgets.provider_picker(probe=True)))
    text = "\n".join(seen)
    assert "AuthenticationError" in text and "pg" in text  # the error paths were taken
    assert SENTINEL not in text


# -- the census: every repr, error, cause chain, listing, widget and log line -----------
@pytest.fixture
def locked_redis(redis_server_factory: Callable[[], RedisServer]) -> RedisServer:
    """A private Redis that wants another password than the one configured."""
    server = redis_server_factory()
    raw = redis.Redis.from_url(server.url)
    raw.config_set("requirepass", "the-right-one")
    raw.close()
    return server


@pytest.fixture
def everywhere(tmp_path: Path, wire: LLMWireServer, locked_redis: RedisServer) -> Iterator[Session]:
    """The sentinel in every credential of every file; each points at a failing service."""
    dead = free_port()
    locked = f"127.0.0.1:{locked_redis.port}"
    (tmp_path / "application-db.yaml").write_text(
        "default_connection: duckdb\nconnections:\n"
        "  duckdb:\n    database: ':memory:'\n"
        "  pg:\n    kind: postgres\n"
        f"    url: postgresql://admin:{SENTINEL}@127.0.0.1:{dead}/db?password={SENTINEL}\n"
        "    connect_timeout: 1\n    retries: 0\n"
        "  pghost:\n    kind: postgres\n"
        f"    host: 127.0.0.1\n    port: {dead}\n    user: admin\n    password: {SENTINEL}\n"
        "    connect_timeout: 1\n    retries: 0\n"
        "  mongodb:\n    kind: mongodb\n"
        f"    url: mongodb://admin:{SENTINEL}@127.0.0.1:{dead}/db\n"
        "    connect_timeout: 1\n    retries: 0\n"
        "  redis:\n    kind: redis\n"
        f"    url: redis://user:{SENTINEL}@{locked}/0\n    connect_timeout: 1\n    retries: 0\n"
        "  redishost:\n    kind: redis\n"
        f"    host: 127.0.0.1\n    port: {locked_redis.port}\n    password: {SENTINEL}\n"
        "    connect_timeout: 1\n    retries: 0\n"
    )
    (tmp_path / "application-cache.yaml").write_text(
        "cache:\n  backend: memory\n"
        f"  pickle_hmac_key: {SENTINEL}\n"
        "  redis:\n"
        f"    url: redis://:{SENTINEL}@{locked}/0\n    password: {SENTINEL}\n"
        "    socket_timeout: 1\n    socket_connect_timeout: 1\n"
    )
    (tmp_path / "application-vector.yaml").write_text(
        "connections:\n"
        f"  qdrant:\n    kind: qdrant\n    url: http://127.0.0.1:{dead}\n    api_key: {SENTINEL}\n"
        f"  chromadb:\n    kind: chromadb\n    url: http://127.0.0.1:{dead}\n"
        f"    token: {SENTINEL}\n"
        "  pgvector:\n    kind: pgvector\n"
        f"    url: postgresql://admin:{SENTINEL}@127.0.0.1:{dead}/db\n"
        "    connect_timeout: 1\n    retries: 0\n"
    )
    (tmp_path / "application-external.yaml").write_text(
        "connections:\n"
        f"  s3:\n    kind: s3\n    bucket: b\n    endpoint_url: http://127.0.0.1:{dead}\n"
        f"    access_key_id: AKIATEST\n    secret_access_key: {SENTINEL}\n"
        f"    session_token: {SENTINEL}\n    connect_timeout: 1\n    max_attempts: 1\n"
        "    retries: 0\n"
        f"  jira:\n    kind: jira\n    url: http://127.0.0.1:{dead}\n    username: u\n"
        f"    password: {SENTINEL}\n    connect_timeout: 1\n    retries: 0\n"
        f"  confluence:\n    kind: confluence\n    url: http://127.0.0.1:{dead}\n"
        f"    token: {SENTINEL}\n    connect_timeout: 1\n    retries: 0\n"
    )
    yield from _llm_session(tmp_path, wire, dead)


class _Records(logging.Handler):
    """Every nbinfra log record, formatted with its exception text, as a handler would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        stack.extend([item.__cause__, item.__context__])


def _failure(call: Callable[[], Any]) -> tuple[BaseException, str]:
    """The error ``call`` raises, with everything a plain traceback module shows of it."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - every error path is inspected
        parts = ["".join(traceback.format_exception(exc))]
        for link in _chain(exc):
            parts += [repr(link), str(link), repr(link.args), repr(vars(link))]
        return exc, "\n".join(parts)
    raise AssertionError(f"{call} did not fail")


def _census(ip: TestingShell, sess: Session, wire: LLMWireServer) -> dict[str, int]:
    from nbinfra.cache.settings import CacheSettings, RedisSettings
    from nbinfra.connections.factory import get_connection_manager
    from nbinfra.connections.settings import connection_entries
    from nbinfra.llm.settings import LLMSettings

    texts: dict[str, list[str]] = {}
    add = lambda kind, text: texts.setdefault(kind, []).append(text)  # noqa: E731
    # reprs of every settings object, manager and provider
    add("repr", repr(sess.settings))
    add("repr", repr(sess.settings.section("cache", CacheSettings)))
    add("repr", repr(sess.settings.section("cache.redis", RedisSettings)))
    llm_settings = LLMSettings.load(sess.settings)
    add("repr", repr(llm_settings))
    for kind in ("openai", "groq", "anthropic"):
        add("repr", repr(llm_settings.provider(kind)))
        add("repr", repr(nbinfra.llm(kind)))
    for name in connection_entries(sess.settings):
        manager = get_connection_manager(name, settings=sess.settings)
        add("repr", repr(manager.settings))
        add("repr", repr(manager))
    # real failures: their messages, chains and plain tracebacks
    wire.push(Fault.unauthorized(f"Incorrect API key provided: {SENTINEL}"))
    calls: list[Callable[[], Any]] = [
        lambda: nbinfra.cache("census", cache_type="redis").set("k", 1),  # wrong password
        lambda: nbinfra.conn("pg").query("SELECT 1"),  # refused port
        lambda: nbinfra.conn("pghost").query("SELECT 1"),
        lambda: nbinfra.conn("pgvector").query("SELECT 1"),
        lambda: nbinfra.conn("redis").query("GET k"),  # wrong password
        lambda: nbinfra.conn("redishost").query("GET k"),
        lambda: nbinfra.conn("mongodb").query({"find": "c"}),
        lambda: nbinfra.conn("s3").query("list"),
        lambda: nbinfra.conn("jira").query("project = X"),
        lambda: nbinfra.conn("confluence").query("type = page"),
        lambda: nbinfra.llm("openai").generate("hi"),  # 401 echoing the key
        lambda: nbinfra.llm("groq").generate("hi"),  # refused port
        lambda: nbinfra.llm("anthropic").generate("hi"),
    ]
    for call in calls:
        exc, text = _failure(call)
        add("errors", f"{type(exc).__name__}: {exc}")
        add("traceback", text)
    # what a notebook shows
    seen: list[str] = []
    for cell in ("%conn list", "%conn health", "%llm list", "%cache use redis", "%cache set k 1"):
        _run(ip, cell, seen)
    add("magics", "\n".join(seen))
    add("widgets", _widget_state(nbinfra.widgets.health_panel().wait(60)))
    return {kind: "\n".join(parts).count(SENTINEL) for kind, parts in texts.items()}


def test_sentinel_census_counts_no_hits(
    ip: TestingShell, everywhere: Session, wire: LLMWireServer
) -> None:
    records = _Records()
    logger = logging.getLogger("nbinfra")
    old_level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    try:
        counts = _census(ip, everywhere, wire)
    finally:
        logger.removeHandler(records)
        logger.setLevel(old_level)
    counts["logs"] = "\n".join(records.lines).count(SENTINEL)
    assert records.lines  # the failures were logged
    print("sentinel hits:", counts)
    assert counts == dict.fromkeys(counts, 0)


def test_bad_password_to_embedded_postgres_shows_no_secret(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """A role that must give a password (the embedded server trusts every other one)."""
    import psycopg

    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS census")
        admin.execute("CREATE ROLE census LOGIN PASSWORD 'the-right-one'")
        row = admin.execute("SHOW hba_file").fetchone()
        assert row is not None
        hba = Path(row[0])
        rules = hba.read_text()
        if "census" not in rules:
            hba.write_text("local all census scram-sha-256\n" + rules)
        admin.execute("SELECT pg_reload_conf()")
    socket_dir = postgres_server.url.split("host=", 1)[1]
    url = f"postgresql://census:{SENTINEL}@/postgres?host={socket_dir}"
    write_resources(
        tmp_path, f"connections:\n  pg:\n    kind: postgres\n    url: {url}\n    retries: 0\n"
    )
    with Session(resources=tmp_path) as sess, use_session(sess):
        exc, text = _failure(lambda: nbinfra.conn("pg").query("SELECT 1"))
    assert "password authentication failed" in text  # the real refusal was taken
    assert SENTINEL not in f"{exc}\n{text}"
