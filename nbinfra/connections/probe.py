"""A TCP probe before the driver connects: a refused port answers at once.

Some drivers wait out a whole selection or connect timeout for a port where nothing
listens (pymongo keeps trying for ``serverSelectionTimeoutMS``). One plain TCP connect
per address tells "refused" or "no such host" in a millisecond. Only the schemes a manager
names as dialled straight to the host are probed (an HTTP client may go through a proxy).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any
from urllib.parse import urlsplit

from nbinfra._deadline import within
from nbinfra._secrets import Secret

__all__ = ["refused", "tcp_addresses"]

PROBE_TIMEOUT = 1.0  # seconds; a probe that takes longer proves nothing, the driver decides


def tcp_addresses(
    settings: Any, default_port: int, schemes: tuple[str, ...]
) -> list[tuple[str, int]]:
    """``(host, port)`` pairs the driver will dial for ``settings`` (``url``, else
    ``host``/``port``); empty when it is not plain TCP (Unix socket, DNS seed list, proxy).

    ``schemes``: the URL schemes the manager's driver dials directly (its ``tcp_schemes``).
    """
    url = getattr(settings, "url", "")
    if isinstance(url, Secret):
        url = url.reveal()
    if url:
        parts = urlsplit(str(url))
        scheme = parts.scheme.lower().split("+")[0]
        if scheme not in schemes or "+srv" in parts.scheme or "host=" in parts.query:
            return []
        hosts = parts.netloc.rpartition("@")[2]
        return [pair for item in hosts.split(",") if (pair := _split(item, default_port))]
    host = getattr(settings, "host", "")
    if not isinstance(host, str) or not host or host.startswith("/"):
        return []
    port = getattr(settings, "port", None)
    try:
        return [(host, int(port or default_port))]
    except (TypeError, ValueError):
        return []


def _split(item: str, default_port: int) -> tuple[str, int] | None:
    host, port = item, ""
    if item.startswith("["):  # [::1]:27017
        host, _, rest = item[1:].partition("]")
        port = rest.lstrip(":")
    elif item.count(":") == 1:
        host, port = item.split(":")
    if not host or host.startswith("%2F") or host.startswith("/"):
        return None  # a Unix socket path
    try:
        return host, int(port) if port else default_port
    except ValueError:
        return None


async def refused(addresses: list[tuple[str, int]], timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why no address takes a TCP connection (``"h:p: connection refused; ..."``), when
    every one refused it or does not resolve; None when one answered or the probe ran out
    of time (then the driver's own timeout applies)."""
    if not addresses:
        return None
    reasons = await asyncio.gather(*(_one(host, port, timeout) for host, port in addresses))
    if any(reason is None for reason in reasons):
        return None
    return "; ".join(f"{h}:{p}: {r}" for (h, p), r in zip(addresses, reasons, strict=True))


async def _one(host: str, port: int, timeout: float) -> str | None:
    try:
        _, writer = await within(asyncio.open_connection(host, port), timeout)
    except ConnectionRefusedError:
        return "connection refused"
    except socket.gaierror:
        return "no such host"
    except (OSError, TimeoutError, asyncio.TimeoutError):
        return None  # unreachable or slow: not conclusive
    writer.close()
    with contextlib.suppress(OSError, TimeoutError, asyncio.TimeoutError):
        await within(writer.wait_closed(), timeout)
    return None
