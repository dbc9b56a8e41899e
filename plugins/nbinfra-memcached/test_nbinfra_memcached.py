"""nbinfra's cache contract on a private memcached server (the Debian ``memcached`` binary),
started on a free port for the test session and killed at the end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from nbinfra_memcached import MemcachedCacheProvider, decode_key, encode_key

from nbinfra.cache import CacheRegistry
from nbinfra.session import Session
from nbinfra.testing import free_port, service_unavailable
from nbinfra.testing.cache_contract import CacheContract


@pytest.fixture(scope="session")
def memcached_port() -> Iterator[int]:
    binary = shutil.which("memcached")
    if binary is None:
        service_unavailable("memcached", "no memcached binary (apt-get install memcached)")
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    args = [binary, *user, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "64"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    service_unavailable("memcached", f"did not start on port {port}")
                time.sleep(0.02)
        yield port
    finally:
        process.kill()
        process.wait(5)


class TestMemcached(CacheContract):
    @pytest.fixture
    async def provider(
        self, memcached_port: int, session: Session
    ) -> AsyncIterator[MemcachedCacheProvider]:
        found = MemcachedCacheProvider(host="127.0.0.1", port=memcached_port, timeout=5)
        yield found
        await found.close()


def test_registered_through_the_entry_point() -> None:
    assert CacheRegistry.get("memcached") is MemcachedCacheProvider


@pytest.mark.parametrize("key", ["plain:k", "with space", "ünï:%20", "tab\tnew\nline"])
def test_keys_round_trip_and_keep_prefixes(key: str) -> None:
    raw = encode_key(key)
    assert decode_key(raw) == key
    assert all(32 < b < 127 for b in raw)
    assert raw.startswith(encode_key(key[:3]))
