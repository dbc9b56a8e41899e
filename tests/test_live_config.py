"""Live configuration: settings changed after first use take effect with no restart.

Each test changes a variable in ``os.environ``, a ``resources/*.yaml`` file or a ``.env``
file after the first use, against the real services (a private redis-server, the
embedded PostgreSQL, the OpenAI wire server), and checks that only the instances whose
own settings changed were rebuilt.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import nbinfra
from nbinfra.config import Settings
from nbinfra.config_sources import CHECK_INTERVAL
from nbinfra.errors import AuthenticationError, MissingSettingError
from nbinfra.session import Session, use_session
from nbinfra.testing import PostgresServer, RedisServer
from nbinfra.testing_llm import LLMWireServer

KEY = "sk-live-config-0123456789"
LIVE_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "GROQ_API_KEY",
    "REDIS_URL",
    "NBINFRA_CACHE_BACKEND",
    "NBINFRA_RESOURCES",
    "DATABASE_URL",
    "NBINFRA_LLM",
    "NBX_LIVE_TTL",
    "NBX_LIVE_REDIS_URL",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """``monkeypatch`` with the variables these tests set removed first."""
    for name in LIVE_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def live(env: pytest.MonkeyPatch) -> Iterator[Session]:
    """A fresh default session reading the shipped configuration and the real environment."""
    fresh = Session()
    with use_session(fresh):
        yield fresh
    fresh.close()


@pytest.fixture(scope="module")
def wire() -> Iterator[LLMWireServer]:
    with LLMWireServer("openai") as server:
        yield server


def next_stat() -> None:
    """Wait until the session stats its files again."""
    time.sleep(CHECK_INTERVAL + 0.05)


def test_an_api_key_set_after_first_use_is_used_with_no_restart(
    live: Session, env: pytest.MonkeyPatch, wire: LLMWireServer
) -> None:
    env.setenv("OPENAI_BASE_URL", wire.base_url("openai"))
    nbinfra.cache("x").set("a", 1)
    memory = live.peek("cache", "memory")
    held = nbinfra.llm("openai")
    with pytest.raises(AuthenticationError, match="set OPENAI_API_KEY"):
        held.generate("hi")
    before = live.peek("llm", "openai")

    env.setenv("OPENAI_API_KEY", KEY)  # what the error said to do
    wire.reset()
    wire.push("answer after the key was set")
    assert nbinfra.llm("openai").generate("hi").content == "answer after the key was set"
    assert wire.last("chat").headers.get("authorization") == f"Bearer {KEY}"
    assert live.peek("llm", "openai") is not before
    assert live.peek("cache", "memory") is memory  # its settings did not change
    assert nbinfra.cache("x").get("a") == 1
    wire.push("the handle made before follows too")
    assert held.generate("again").content == "the handle made before follows too"


def test_only_instances_whose_own_variables_changed_are_rebuilt(
    live: Session, env: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    openai = nbinfra.llm("openai").llm
    groq = nbinfra.llm("groq").llm
    duckdb = nbinfra.conn("duckdb").manager
    redis_conn = nbinfra.conn("redis").manager
    nbinfra.cache("x").set("a", 1)
    memory = live.peek("cache", "memory")

    env.setenv("OPENAI_API_KEY", KEY)
    assert nbinfra.llm("groq").llm is groq
    assert nbinfra.conn("duckdb").manager is duckdb
    assert nbinfra.llm("openai").llm is not openai
    assert nbinfra.llm("openai").llm is nbinfra.llm("openai").llm  # rebuilt once

    env.setenv("REDIS_URL", redis_server.url)
    assert nbinfra.conn("redis").manager is not redis_conn
    assert nbinfra.conn("redis").query("PING").rows  # the new URL answers
    assert f":{redis_server.port}" in nbinfra.conn("redis").target
    for same in (nbinfra.llm("groq").llm, nbinfra.conn("duckdb").manager):
        assert same in (groq, duckdb)
    nbinfra.cache("x").get("a")
    assert live.peek("cache", "memory") is memory  # the memory cache does not use REDIS_URL


def _redis_keys(server: RedisServer) -> set[str]:
    import redis

    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        return set(client.keys("live:*"))
    finally:
        client.close()


def test_cache_backend_and_redis_url_changed_after_first_use_take_effect(
    live: Session,
    env: pytest.MonkeyPatch,
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    first, second = redis_server_factory(), redis_server_factory()
    nbinfra.cache("live").set("in_memory", 1)
    assert live.peek("cache", "redis") is None

    env.setenv("NBINFRA_CACHE_BACKEND", "redis")
    env.setenv("REDIS_URL", first.url)
    nbinfra.cache("live").set("on_first", 2)
    assert _redis_keys(first) == {"live:on_first"}
    provider = live.peek("cache", "redis")

    env.setenv("REDIS_URL", second.url)
    nbinfra.cache("live").set("on_second", 3)
    assert _redis_keys(second) == {"live:on_second"}
    assert _redis_keys(first) == {"live:on_first"}
    assert live.peek("cache", "redis") is not provider
    assert nbinfra.cache("live").get("on_second") == 3

    env.delenv("NBINFRA_CACHE_BACKEND")
    assert nbinfra.cache("live").get("in_memory") == 1  # back on the memory cache, still there


def _database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def test_database_url_changed_after_first_use_takes_effect(
    live: Session, env: pytest.MonkeyPatch, postgres_server: PostgresServer
) -> None:
    import psycopg

    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = 'nbx_live'").fetchone()
        if found is None:
            admin.execute("CREATE DATABASE nbx_live")
    env.setenv("DATABASE_URL", postgres_server.url)
    first = nbinfra.conn("postgres").query("SELECT current_database()").rows
    assert first == [("postgres",)]
    env.setenv("DATABASE_URL", _database(postgres_server.url, "nbx_live"))
    assert nbinfra.conn("postgres").query("SELECT current_database()").rows == [("nbx_live",)]


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path, env: pytest.MonkeyPatch) -> Iterator[tuple[Path, Session]]:
    """A resources folder of one's own (only the cache file) and a session reading it."""
    resources = tmp_path / "resources"
    write(resources / "application-cache.yaml", "cache:\n  default_ttl: 300\n")
    fresh = Session(resources=resources)
    with use_session(fresh):
        yield resources, fresh
    fresh.close()


def test_a_yaml_edit_takes_effect_on_the_next_use(folder: tuple[Path, Session]) -> None:
    resources, live = folder
    assert nbinfra.cache("x").service.default_ttl == 300
    memory = live.peek("cache", "memory")
    write(resources / "application-cache.yaml", "cache:\n  default_ttl: 60\n")
    next_stat()
    assert nbinfra.cache("x").service.default_ttl == 60
    assert live.peek("cache", "memory") is memory  # cache.memory did not change

    write(resources / "application-cache.yaml", "cache:\n  memory:\n    max_size: 3\n")
    next_stat()
    nbinfra.cache("x").set("k", 1)
    rebuilt = live.peek("cache", "memory")
    assert rebuilt is not memory and rebuilt.max_size == 3
    assert nbinfra.cache("x").service.default_ttl == 300  # the shipped default again


def test_a_new_file_in_the_folder_replaces_the_shipped_one(folder: tuple[Path, Session]) -> None:
    resources, _live = folder
    assert nbinfra.llm("fake").llm.settings.model != "live-model"
    write(
        resources / "application-llm.yaml",
        "llm:\n  providers:\n    fake:\n      model: live-model\n",
    )
    next_stat()
    assert nbinfra.llm("fake").model == "live-model"


def test_reload_applies_an_edit_at_once_and_lists_what_it_closed(
    folder: tuple[Path, Session],
) -> None:
    resources, live = folder
    nbinfra.cache("x").set("k", 1)
    duckdb = nbinfra.conn("duckdb").manager
    memory = live.peek("cache", "memory")
    write(
        resources / "application-cache.yaml",
        "cache:\n  default_ttl: 300\n  memory:\n    max_size: 7\n",
    )
    assert nbinfra.reload() == ["cache:memory"]  # no wait for the next stat
    assert nbinfra.conn("duckdb").manager is duckdb
    nbinfra.cache("x").set("k", 1)
    assert live.peek("cache", "memory") is not memory
    assert live.peek("cache", "memory").max_size == 7
    assert nbinfra.reload() == []


def test_an_error_that_says_set_x_is_cured_by_setting_x(
    folder: tuple[Path, Session], env: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    resources, _live = folder
    write(
        resources / "application-db.yaml",
        "connections:\n  kv:\n    kind: redis\n    url: ${NBX_LIVE_REDIS_URL}\n",
    )
    with pytest.raises(MissingSettingError, match="Set NBX_LIVE_REDIS_URL"):
        nbinfra.conn("kv")
    env.setenv("NBX_LIVE_REDIS_URL", redis_server.url)  # at once: no wait for a stat
    assert nbinfra.conn("kv").query("PING").rows


def test_dotenv_in_the_working_directory_never_overrides_the_environment(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "resources" / "application-cache.yaml",
        "cache:\n  default_ttl: ${NBX_LIVE_TTL:300}\n",
    )
    write(tmp_path / ".env", "NBX_LIVE_TTL=42\n")
    env.chdir(tmp_path)
    with Session() as fresh, use_session(fresh):
        assert nbinfra.cache("x").service.default_ttl == 42
        assert "NBX_LIVE_TTL" not in os.environ  # read, not exported
        env.setenv("NBX_LIVE_TTL", "7")
        assert nbinfra.cache("x").service.default_ttl == 7  # the real variable wins
        env.delenv("NBX_LIVE_TTL")
        assert nbinfra.cache("x").service.default_ttl == 42
        write(tmp_path / ".env", "NBX_LIVE_TTL=4343\n")
        next_stat()
        assert nbinfra.cache("x").service.default_ttl == 4343


def test_dotenv_next_to_the_resources_folder_is_read(
    tmp_path: Path, env: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    write(
        project / "resources" / "application-cache.yaml",
        "cache:\n  default_ttl: ${NBX_LIVE_TTL:300}\n",
    )
    write(project / ".env", "NBX_LIVE_TTL=11\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env.chdir(elsewhere)
    env.setenv("NBINFRA_RESOURCES", str(project / "resources"))
    with Session() as fresh, use_session(fresh):
        assert nbinfra.cache("x").service.default_ttl == 11
        write(elsewhere / ".env", "NBX_LIVE_TTL=12\n")  # the working directory's comes first
        next_stat()
        assert nbinfra.cache("x").service.default_ttl == 12


def test_a_session_given_its_settings_keeps_them(env: pytest.MonkeyPatch) -> None:
    fixed = Settings.from_dict({"cache": {"default_ttl": "${NBX_LIVE_TTL:5}"}})
    with Session(fixed) as fresh, use_session(fresh):
        nbinfra.cache("x").set("a", 1)
        memory = fresh.peek("cache", "memory")
        env.setenv("NBX_LIVE_TTL", "9")
        assert nbinfra.cache("x").service.default_ttl == 5
        assert fresh.peek("cache", "memory") is memory
        assert fresh.reload() == []
