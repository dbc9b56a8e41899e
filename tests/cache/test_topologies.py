"""Redis Cluster (three local primaries), Sentinel (one sentinel over a primary), TLS."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbinfra.cache import CacheService
from nbinfra.cache.redis import RedisCacheProvider
from nbinfra.errors import CacheUnavailableError
from nbinfra.session import Session
from nbinfra.testing import (
    RedisServer,
    _die_with_parent,
    find_redis_server,
    free_port,
    service_unavailable,
)


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    server, cli = find_redis_server(), shutil.which("redis-cli")
    if server is None or cli is None:
        service_unavailable("redis cluster", "needs redis-server and redis-cli")
    workdir = Path(tempfile.mkdtemp(prefix="nbinfra-cluster-"))
    ports = [_bus_safe_port() for _ in range(3)]
    procs = []
    try:
        for port in ports:
            node = workdir / str(port)
            node.mkdir()
            procs.append(
                subprocess.Popen(
                    [
                        server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--protected-mode",
                        "no",
                        "--dir",
                        str(node),
                        "--loglevel",
                        "warning",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=_die_with_parent,
                )
            )
        for port in ports:
            _wait_ping(cli, port)
        nodes = [f"127.0.0.1:{p}" for p in ports]
        created = subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if created.returncode != 0:
            service_unavailable("redis cluster", created.stdout[-300:] + created.stderr[-300:])
        _wait_cluster_ok(cli, ports[0])
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


def _bus_safe_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 <= 65535:
            return port
    service_unavailable("redis cluster", "no free port below 55536")


def _wait_ping(cli: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run([cli, "-p", str(port), "ping"], capture_output=True, text=True)
        if out.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    service_unavailable("redis cluster", f"node {port} did not start")


def _wait_cluster_ok(cli: str, port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        out = subprocess.run([cli, "-p", str(port), "cluster", "info"], capture_output=True)
        if b"cluster_state:ok" in out.stdout:
            return
        time.sleep(0.1)
    service_unavailable("redis cluster", "cluster_state never became ok")


async def test_cluster_contract(cluster_url: str, session: Session) -> None:
    provider = RedisCacheProvider(url=cluster_url)
    assert provider.is_cluster
    svc = CacheService("cl", provider=provider, session=session)
    other = CacheService("cl2", provider=provider, session=session)
    try:
        items = {f"k{i}": {"i": i} for i in range(200)}  # spread over every node's slots
        await svc.set_many(items, ttl=60)
        await svc.set_many({"forever": (1, 2)}, ttl=0)
        await other.set("k1", "other")
        assert await svc.get_many(list(items)) == items
        assert await svc.get("forever") == (1, 2)
        assert await svc.incr("counter", ttl=30) == 1
        assert await svc.get_or_set("lazy", lambda: [1]) == [1]
        assert len(await svc.keys()) == 203
        assert await svc.delete_many(["k1", "k2", "absent"]) == 2
        assert await svc.clear() == 201  # SCAN on every primary, UNLINK split by slot
        assert await svc.keys() == []
        assert await other.get("k1") == "other"
        async with provider.lock("cluster-lock", ttl=5, wait=1):
            assert await provider.acquire_lock("cluster-lock", 5) is None
        assert (await svc.health()).ok
    finally:
        await provider.close()


@pytest.fixture
def sentinel_url(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    binary = find_redis_server()
    assert binary is not None
    port = free_port()
    conf = tmp_path / "sentinel.conf"  # sentinel rewrites its config, so a private file
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {tmp_path}\n"
        f"sentinel monitor primary 127.0.0.1 {redis_server.port} 1\n"
    )
    proc = subprocess.Popen(
        [binary, str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    try:
        cli = shutil.which("redis-cli")
        if cli is not None:
            _wait_ping(cli, port)
        else:
            time.sleep(0.5)
        yield f"redis+sentinel://127.0.0.1:{port}/primary/0"
    finally:
        proc.kill()
        proc.wait(5)


async def test_sentinel_finds_the_primary(
    sentinel_url: str, redis_server: RedisServer, session: Session
) -> None:
    import redis

    provider = RedisCacheProvider(url=sentinel_url)
    svc = CacheService("sen", provider=provider, session=session)
    try:
        await svc.set("k", (1, 2))
        assert await svc.get("k") == (1, 2)
        raw = redis.Redis.from_url(redis_server.url)  # it really is on the primary
        assert raw.get("sen:k") is not None
        raw.close()
        assert await svc.clear() == 1
    finally:
        await provider.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS-only redis-server with a self-signed certificate for 127.0.0.1."""
    openssl, binary = shutil.which("openssl"), find_redis_server()
    if openssl is None or binary is None:
        service_unavailable("redis over TLS", "needs openssl and redis-server")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        capture_output=True,
        timeout=30,
    )
    if made.returncode != 0:
        service_unavailable("redis over TLS", made.stderr.decode()[-200:])
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(cert),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                service_unavailable("redis over TLS", "this redis-server has no TLS support")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port, cert
    finally:
        proc.kill()
        proc.wait(5)


async def test_tls_by_url_and_by_settings(tls_server: tuple[int, Path], session: Session) -> None:
    port, cert = tls_server
    by_url = RedisCacheProvider(
        url=f"rediss://127.0.0.1:{port}/0", ssl_ca_certs=str(cert), socket_connect_timeout=5
    )
    by_settings = RedisCacheProvider(
        host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(cert), socket_connect_timeout=5
    )
    untrusted = RedisCacheProvider(url=f"rediss://127.0.0.1:{port}/0", socket_connect_timeout=5)
    try:
        await CacheService("tls", provider=by_url, session=session).set("k", {"secure": True})
        got = await CacheService("tls", provider=by_settings, session=session).get("k")
        assert got == {"secure": True}
        assert by_settings.target == f"rediss://127.0.0.1:{port}/0"
        with pytest.raises(CacheUnavailableError, match=f"127.0.0.1:{port}"):
            await CacheService("tls", provider=untrusted, session=session).get("k")
    finally:
        for provider in (by_url, by_settings, untrusted):
            await provider.close()
