"""Range checks at load and duplicate YAML keys, on real resource folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import nbinfra
from nbinfra.cache.factory import CacheConfig
from nbinfra.cache.instances import configured_instances
from nbinfra.cache.settings import BreakerSettings, MemorySettings, RedisSettings
from nbinfra.config import PACKAGE_RESOURCES, load_settings
from nbinfra.connections.factory import get_connection_manager
from nbinfra.connections.settings import connection_entries
from nbinfra.errors import ConfigError
from nbinfra.llm.settings import LLMSettings
from nbinfra.session import Session, use_session


def _folder(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def _cache(path: str, schema: type) -> Callable[[Session], Any]:
    return lambda sess: sess.settings.section(path, schema)


def _conn(name: str) -> Callable[[Session], Any]:
    return lambda sess: get_connection_manager(name, settings=sess.settings)


CACHE = "application-cache.yaml"
DB = "application-db.yaml"
LLM = "application-llm.yaml"

# (file, text, key path, shown value, allowed range, how the component reads it)
CASES = [
    (
        CACHE,
        "cache:\n  redis:\n    max_connections: 0\n",
        "cache.redis.max_connections",
        "0",
        "an integer >= 1",
        _cache("cache.redis", RedisSettings),
    ),
    (
        CACHE,
        "cache:\n  default_ttl: -5\n",
        "cache.default_ttl",
        "-5",
        "a number >= 0 (0 = no expiry)",
        _cache("cache", CacheConfig),
    ),
    (
        CACHE,
        "cache:\n  memory:\n    max_size: -1\n",
        "cache.memory.max_size",
        "-1",
        "an integer >= 0 (0 = unbounded)",
        _cache("cache.memory", MemorySettings),
    ),
    (
        CACHE,
        "cache:\n  redis:\n    breaker:\n      failure_threshold: 0\n",
        "cache.redis.breaker.failure_threshold",
        "0",
        "an integer >= 1",
        _cache("cache.redis.breaker", BreakerSettings),
    ),
    (
        CACHE,
        "cache:\n  redis:\n    socket_timeout: -1\n",
        "cache.redis.socket_timeout",
        "-1",
        "a number > 0",
        _cache("cache.redis", RedisSettings),
    ),
    (
        CACHE,
        "cache:\n  redis:\n    port: 70000\n",
        "cache.redis.port",
        "70000",
        "an integer from 1 to 65535",
        _cache("cache.redis", RedisSettings),
    ),
    (
        CACHE,
        "cache:\n  instances:\n    short:\n      ttl: -1\n",
        "cache.instances.short.ttl",
        "-1",
        "a number >= 0 (0 = no expiry)",
        configured_instances,
    ),
    (
        DB,
        "connections:\n  pg:\n    kind: postgres\n    max_size: 0\n",
        "connections.pg.max_size",
        "0",
        "an integer >= 1",
        _conn("pg"),
    ),
    (
        DB,
        "connections:\n  pg:\n    kind: postgres\n    min_size: 6\n",
        "connections.pg.min_size",
        "6",
        "an integer from 0 to max_size",
        _conn("pg"),
    ),
    (
        DB,
        "connections:\n  duckdb:\n    connect_timeout: 0\n",
        "connections.duckdb.connect_timeout",
        "0",
        "a number > 0",
        _conn("duckdb"),
    ),
    (
        DB,
        "connections:\n  duckdb:\n    retries: -1\n",
        "connections.duckdb.retries",
        "-1",
        "an integer >= 0",
        _conn("duckdb"),
    ),
    (
        DB,
        "connections:\n  r:\n    kind: redis\n    timeout: .nan\n",
        "connections.r.timeout",
        "nan",
        "a number > 0",
        _conn("r"),
    ),
    (
        LLM,
        "llm:\n  max_retries: -2\n",
        "llm.max_retries",
        "-2",
        "an integer >= 0",
        lambda sess: LLMSettings.load(sess.settings),
    ),
    (
        LLM,
        "llm:\n  providers:\n    openai:\n      timeout: 0\n",
        "llm.providers.openai.timeout",
        "0",
        "a number > 0",
        lambda sess: LLMSettings.load(sess.settings),
    ),
]


@pytest.mark.parametrize(
    ("file", "text", "key", "shown", "allowed", "read"),
    CASES,
    ids=[case[2] for case in CASES],
)
def test_out_of_range_names_file_key_value_and_range(
    tmp_path: Path,
    file: str,
    text: str,
    key: str,
    shown: str,
    allowed: str,
    read: Callable[[Session], Any],
) -> None:
    folder = _folder(tmp_path, file, text)
    with Session(resources=folder) as sess, pytest.raises(ConfigError) as info:
        read(sess)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{key} in {folder / file}: {shown} is ")
    assert message.endswith(f"allowed: {allowed}")


def test_out_of_range_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_PORT", "0")
    with Session(resources=tmp_path) as sess, pytest.raises(ConfigError) as info:
        sess.settings.section("cache.redis", RedisSettings)
    assert str(info.value) == (
        f"cache.redis.port in {PACKAGE_RESOURCES.resolve() / CACHE}: 0 is out of range; "
        "allowed: an integer from 1 to 65535"
    )


def test_zero_connections_fails_before_any_redis_call(tmp_path: Path) -> None:
    """``max_connections: 0`` used to make ``set()`` wait forever for a free connection."""
    folder = _folder(
        tmp_path, CACHE, "cache:\n  backend: redis\n  redis:\n    max_connections: 0\n"
    )
    sess = Session(resources=folder)
    with use_session(sess), pytest.raises(ConfigError, match="max_connections"):
        nbinfra.cache("bounds").set("a", 1)
    sess.close()


def test_socket_timeout_is_not_reported_as_redis_down(tmp_path: Path) -> None:
    folder = _folder(
        tmp_path, CACHE, "cache:\n  backend: redis\n  redis:\n    socket_timeout: -1\n"
    )
    sess = Session(resources=folder)
    with use_session(sess), pytest.raises(ConfigError) as info:
        nbinfra.cache("bounds").get("a")
    sess.close()
    assert "Start Redis" not in str(info.value)
    assert "cache.redis.socket_timeout" in str(info.value)


def test_the_shipped_defaults_are_in_range() -> None:
    settings = load_settings(PACKAGE_RESOURCES)
    settings.section("cache", CacheConfig)
    settings.section("cache.redis", RedisSettings)
    settings.section("cache.memory", MemorySettings)
    assert LLMSettings.load(settings).timeout > 0
    for name in connection_entries(settings):
        assert get_connection_manager(name, settings=settings).settings.timeout > 0


# -- duplicate keys ---------------------------------------------------------------------
def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = "cache:\n  default_ttl: 60\n  redis:\n    port: 6380\n  default_ttl: 5\n"
    folder = _folder(tmp_path, CACHE, text)
    with pytest.raises(ConfigError) as info:
        load_settings(folder)
    assert str(info.value) == (
        f"{folder / CACHE}: key 'default_ttl' is defined twice, at line 2 and line 5; "
        "keep one of them."
    )


def test_duplicate_nested_key(tmp_path: Path) -> None:
    text = "connections:\n  pg:\n    kind: postgres\n    url: a\n\n    url: b\n"
    folder = _folder(tmp_path, DB, text)
    with pytest.raises(ConfigError, match=r"key 'url' is defined twice, at line 4 and line 6"):
        load_settings(folder)


def test_same_key_in_different_mappings_and_merge_keys_are_fine(tmp_path: Path) -> None:
    text = (
        "base: &base {timeout: 1, retries: 0}\n"
        "connections:\n"
        "  a:\n    kind: duckdb\n    timeout: 2\n"
        "  b:\n    <<: *base\n    kind: duckdb\n    timeout: 3\n"
    )
    folder = _folder(tmp_path, DB, text)
    settings = load_settings(folder)
    assert settings.get("connections.a.timeout") == 2
    assert settings.get("connections.b.timeout") == 3
    assert settings.get("connections.b.retries") == 0
