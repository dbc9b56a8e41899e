"""The external backends are declared lazily, configured in the yaml files, and usable
through the synchronous facade."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nbinfra.config import Settings, load_settings
from nbinfra.connections import (
    ConnectionFactory,
    ConnectionRegistry,
    ConnectionType,
    SyncConnection,
    configured_connections,
)
from nbinfra.errors import ConnError
from nbinfra.registry import BUILTINS, target_of
from nbinfra.testing import RedisServer, S3Server

OURS = {
    "confluence": ("nbinfra.connections.confluence:ConfluenceConnectionManager", "atlassian"),
    "jira": ("nbinfra.connections.jira:JiraConnectionManager", "atlassian"),
    "mongodb": ("nbinfra.connections.mongodb:MongoDBConnectionManager", "mongodb"),
    "redis": ("nbinfra.connections.redis:RedisConnectionManager", "redis"),
    "s3": ("nbinfra.connections.s3:S3ConnectionManager", "s3"),
}
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", sorted(OURS))
def test_builtin_rows_match_the_registered_classes(kind: str) -> None:
    target, extra = OURS[kind]
    entry = BUILTINS["nbinfra.connections"][kind]
    assert (entry.target, entry.extra) == (target, extra)
    cls = ConnectionRegistry.get(ConnectionType(kind))
    assert target_of(cls) == target and cls.kind == kind


def test_builtin_rows_are_sorted() -> None:
    kinds = list(BUILTINS["nbinfra.connections"])
    assert kinds == sorted(kinds)


def test_importing_connections_loads_no_driver() -> None:
    code = (
        "import sys, nbinfra, nbinfra.connections as c\n"
        "c.ConnectionRegistry.kinds()\n"
        "bad = [m for m in ('boto3', 'botocore', 'pymongo', 'mongomock', 'redis', 'atlassian',"
        " 'requests', 'pandas') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert out.stdout.strip() == ""


def test_shipped_yaml_configures_the_five_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JIRA_URL", "CONFLUENCE_URL", "S3_BUCKET", "S3_ENDPOINT_URL", "MONGODB_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://minio.local:9000")
    monkeypatch.setenv("CONFLUENCE_PASSWORD", "wiki-yaml-SECRET-42")
    settings = load_settings()
    specs = configured_connections(settings)
    for name in OURS:
        assert specs[name].kind == name
        assert "wiki-yaml-SECRET-42" not in repr(specs[name])
    assert specs["s3"].target == "http://minio.local:9000"
    for name in OURS:  # every entry validates into its manager's settings
        manager = ConnectionFactory.get_connection_manager(name, settings=settings)
        assert manager.name == name and manager.kind == name
    assert (
        ConnectionFactory.get_connection_manager("confluence", settings=settings).settings.cloud
        is False
    )


async def test_unconfigured_jira_says_what_to_set() -> None:
    manager = ConnectionFactory.get_connection_manager(
        "jira", settings=Settings.from_dict({"connections": {"jira": {"url": ""}}})
    )
    with pytest.raises(ConnError, match=r"set url under connections\.jira"):
        await manager.connect()


def test_sync_facade_runs_queries_and_native_methods(
    redis_server: RedisServer, s3_server: S3Server
) -> None:
    settings = Settings.from_dict(
        {
            "connections": {
                "cache_db": {"kind": "redis", "url": redis_server.url},
                "lake": {
                    "kind": "s3",
                    "endpoint_url": s3_server.url,
                    "region": s3_server.region,
                    "access_key_id": s3_server.access_key,
                    "secret_access_key": s3_server.secret_key,
                    "bucket": "facade-bucket",
                },
            }
        }
    )
    with SyncConnection(
        ConnectionFactory.get_connection_manager("cache_db", settings=settings)
    ) as r:
        r.command("SET", "facade:key", "value")
        assert r.query("GET facade:key").scalar() == "value"
        assert r.read("facade:key") == "value"
        assert r.health().ok
    lake = SyncConnection(ConnectionFactory.get_connection_manager("lake", settings=settings))
    try:
        lake.create_bucket()
        lake.put_object("a/b.txt", "hi")
        assert lake.query("a/").scalar() == "a/b.txt"
        assert lake.get_object("a/b.txt") == b"hi"
    finally:
        lake.close()
