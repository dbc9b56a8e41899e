"""Redis through ``redis.asyncio``: commands, pipelines, key scans, typed reads.

::

    r = ConnectionFactory.get_connection_manager("redis")
    await r.connect()
    await r.command("SET", "greeting", "hello world")
    await r.execute_query('HSET user:1 name "Ada Lovelace" born 1815')
    (await r.execute_query("HGETALL user:1")).df()          # field, value
    await r.pipeline([("INCR", "hits"), "EXPIRE hits 60"])
    await r.scan("user:*")                                  # keys, without blocking KEYS
    await r.read("user:1")                                  # {"name": ..., "born": ...}

``execute_query`` takes a command line split like a shell (``shlex``): quotes keep spaces.
Several lines run as one pipeline. ``read`` picks the right command for the key's type.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nbinfra._bounds import AtLeastOne, NonNegativeInt, Port, PositiveFloat
from nbinfra._secrets import Secret, mask_url, reveal
from nbinfra.connections.base import AsyncBaseConnectionManager
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.settings import ConnectionSettings, one_line
from nbinfra.connections.types import QueryResult
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.logs import get_logger

__all__ = ["RedisConnectionManager", "RedisSettings", "parse_commands"]

log = get_logger(__name__)
T = TypeVar("T")

# Commands safe to retry after a dropped connection (they change nothing).
_READ_ONLY = frozenset(
    {
        "GET",
        "MGET",
        "STRLEN",
        "GETRANGE",
        "EXISTS",
        "TYPE",
        "TTL",
        "PTTL",
        "KEYS",
        "SCAN",
        "HGET",
        "HMGET",
        "HGETALL",
        "HKEYS",
        "HVALS",
        "HLEN",
        "HEXISTS",
        "HSCAN",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "SMEMBERS",
        "SCARD",
        "SISMEMBER",
        "SSCAN",
        "ZRANGE",
        "ZCARD",
        "ZSCORE",
        "ZRANK",
        "ZSCAN",
        "ZRANGEBYSCORE",
        "XRANGE",
        "XREVRANGE",
        "XLEN",
        "PING",
        "INFO",
        "DBSIZE",
        "ECHO",
        "TIME",
        "OBJECT",
        "MEMORY",
    }
)


@dataclass
class RedisSettings(ConnectionSettings):
    """``connections.redis`` in application-db.yaml: a ``url``, or host/port/db/password."""

    # repr=False: a URL may carry a password; target() shows it masked.
    url: str | None = field(default=None, repr=False)
    host: str = "localhost"
    port: Port = 6379
    db: NonNegativeInt = 0
    username: str | None = None
    password: Secret | None = None
    ssl: bool = False
    decode_responses: bool = True
    max_connections: AtLeastOne | None = None
    scan_count: AtLeastOne = 500  # COUNT hint per SCAN step
    connect_timeout: PositiveFloat = 5.0
    timeout: PositiveFloat = 30.0  # one command on the socket

    def target(self) -> str:
        if self.url:
            return mask_url(self.url)
        scheme = "rediss" if self.ssl else "redis"
        return f"{scheme}://{self.host}:{self.port}/{self.db}"


@ConnectionRegistry.register(ConnectionType.REDIS)
class RedisConnectionManager(AsyncBaseConnectionManager):
    """An async Redis client with its own connection pool."""

    kind = "redis"
    settings_class = RedisSettings
    settings: RedisSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Any = None

    # -- lifecycle ------------------------------------------------------------------
    async def _open(self) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        s = self.settings
        options: dict[str, Any] = {
            "socket_timeout": s.timeout,
            "socket_connect_timeout": s.connect_timeout,
            "decode_responses": s.decode_responses,
            "max_connections": s.max_connections,
            # The manager owns reconnects and retries (idempotent commands only); redis-py
            # would otherwise retry every command, writes included, with second-long backoff.
            "retry": Retry(NoBackoff(), 0),
        }
        if s.username:
            options["username"] = s.username
        if s.password:
            options["password"] = reveal(s.password)
        if s.url:
            client = aioredis.Redis.from_url(s.url, **options)
        else:
            client = aioredis.Redis(host=s.host, port=s.port, db=s.db, ssl=s.ssl, **options)
        try:
            await client.ping()
        except BaseException:
            await client.aclose()
            raise
        self._client = client

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _ping(self) -> str | None:
        client = self.client
        await client.ping()
        info = await client.info("server")
        version = info.get("redis_version") if isinstance(info, dict) else None
        return f"Redis {version}" if version else None

    @property
    def client(self) -> Any:
        """The ``redis.asyncio.Redis`` client (connect first)."""
        client = self._client
        if client is None:
            raise ConnectionUnavailableError(
                f"Redis connection '{self.name}' is closed; it reconnects on next use."
            )
        return client

    async def _op(self, what: str, fn: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        return await self._call(fn, what=what, idempotent=idempotent)

    def _is_idempotent(self, query: Any) -> bool:
        try:
            commands = parse_commands(query)
        except QueryError:
            return False
        return all(str(c[0]).upper() in _READ_ONLY for c in commands)

    # -- errors (the one boundary for redis exceptions) ------------------------------------
    def _translate(self, exc: BaseException, what: str) -> ConnError:
        from redis import exceptions as rex

        where = f"Redis at {self.target}"
        if isinstance(exc, (rex.AuthenticationError, rex.AuthorizationError)):
            return ConnError(
                f"{where} refused the credentials; check username/password under "
                f"connections.{self.name}."
            )
        if isinstance(exc, rex.TimeoutError):
            return ConnectionUnavailableError(f"{where} did not answer in time ({what}).")
        if isinstance(exc, rex.ConnectionError):
            return ConnectionUnavailableError(
                f"Cannot reach {where} ({what}); check the url and that the server is up."
            )
        if isinstance(exc, rex.ResponseError):
            return QueryError(f"Redis refused {what}: {one_line(str(exc))}")
        if isinstance(exc, rex.RedisError):
            return QueryError(f"{where}: {what} failed: {one_line(str(exc))}")
        return super()._translate(exc, what)

    # -- commands ---------------------------------------------------------------------------
    async def command(self, *args: Any) -> Any:
        """Run one command (``command("HSET", "h", "f", 1)``); reads are retried."""
        if not args:
            raise QueryError("A Redis command needs at least its name, e.g. command('PING').")
        name = str(args[0]).upper()
        return await self._op(
            name, lambda: self.client.execute_command(*args), idempotent=name in _READ_ONLY
        )

    async def pipeline(
        self, commands: Sequence[str | Sequence[Any]], *, transaction: bool = True
    ) -> list[Any]:
        """Run commands in one round trip (``MULTI``/``EXEC`` unless ``transaction=False``).

        Each command is a string (``"INCR hits"``) or a sequence (``("SET", "k", v)``).
        """
        parsed = [_as_args(c) for c in commands]

        async def send() -> list[Any]:
            async with self.client.pipeline(transaction=transaction) as pipe:
                for args in parsed:
                    pipe.execute_command(*args)
                return list(await pipe.execute(raise_on_error=True))

        idempotent = all(str(a[0]).upper() in _READ_ONLY for a in parsed)
        return await self._op("pipeline", send, idempotent=idempotent)

    async def scan(
        self, pattern: str = "*", *, type: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Keys matching ``pattern`` via incremental SCAN (never the blocking KEYS)."""

        async def collect() -> list[str]:
            found: list[str] = []
            async for key in self.client.scan_iter(
                match=pattern, count=self.settings.scan_count, _type=type
            ):
                found.append(key.decode() if isinstance(key, bytes) else key)
                if limit is not None and len(found) >= limit:
                    break
            return found

        return await self._op("scan", collect, idempotent=True)

    async def key_type(self, key: str) -> str:
        """``string``, ``hash``, ``list``, ``set``, ``zset``, ``stream`` or ``none``."""
        kind = await self.command("TYPE", key)
        return kind.decode() if isinstance(kind, bytes) else str(kind)

    async def read(self, key: str) -> Any:
        """The value of ``key`` by its type: str, dict, list, set, [(member, score)] or
        stream entries; ``None`` when the key does not exist."""
        kind = await self.key_type(key)
        if kind == "none":
            return None
        readers: dict[str, Callable[[Any], Awaitable[Any]]] = {
            "string": lambda c: c.get(key),
            "hash": lambda c: c.hgetall(key),
            "list": lambda c: c.lrange(key, 0, -1),
            "set": lambda c: c.smembers(key),
            "zset": lambda c: c.zrange(key, 0, -1, withscores=True),
            "stream": lambda c: c.xrange(key),
        }
        reader = readers.get(kind)
        if reader is None:
            raise QueryError(f"Cannot read key '{key}' of Redis type '{kind}'.")
        value = await self._op(f"read {kind}", lambda: reader(self.client), idempotent=True)
        if kind == "zset":
            return [(member, float(score)) for member, score in value]
        return value

    async def info(self, section: str | None = None) -> dict[str, Any]:
        """``INFO`` (or one section of it) as a dict."""
        args = [section] if section else []
        answer: dict[str, Any] = await self._op(
            "INFO", lambda: self.client.info(*args), idempotent=True
        )
        return answer

    # -- the uniform query ----------------------------------------------------------------
    async def _execute(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        commands = parse_commands(query)
        started = time.perf_counter()
        client = self.client
        if len(commands) == 1:
            result = reply_table(await client.execute_command(*commands[0]), limit)
        else:
            async with client.pipeline(transaction=True) as pipe:
                for args in commands:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=True)
            rows = [
                (" ".join(map(str, c)), _text(r)) for c, r in zip(commands, replies, strict=True)
            ]
            result = QueryResult(columns=["command", "result"], rows=rows)
        result.elapsed = time.perf_counter() - started
        result.statement = query if isinstance(query, str) else repr(query)
        return result


def parse_commands(query: Any) -> list[list[Any]]:
    """Command lines (``'SET k "a b"'``) or argument sequences, one per command."""
    if isinstance(query, str):
        lines = [line for line in query.splitlines() if line.strip()]
        if not lines:
            raise QueryError('A Redis query is a command line, e.g. "GET mykey".')
        return [_as_args(line) for line in lines]
    if isinstance(query, Sequence) and query and not isinstance(query, bytes):
        if all(isinstance(c, (str, Sequence)) and not isinstance(c, bytes) for c in query) and (
            isinstance(query[0], Sequence) and not isinstance(query[0], str)
        ):
            return [_as_args(c) for c in query]
        return [list(query)]
    raise QueryError('A Redis query is a command line, e.g. "GET mykey".')


def _as_args(command: str | Sequence[Any]) -> list[Any]:
    if isinstance(command, str):
        try:
            args = shlex.split(command, comments=False, posix=True)
        except ValueError as exc:
            raise QueryError(f"Cannot parse the Redis command {command!r}: {exc}.") from exc
    else:
        args = list(command)
    if not args:
        raise QueryError("Empty Redis command.")
    return args


def reply_table(reply: Any, limit: int | None = None) -> QueryResult:
    """A reply as rows: mappings as (field, value), sequences one item a row, else one value."""
    if isinstance(reply, Mapping):
        rows: list[tuple[Any, ...]] = [(_text(k), _text(v)) for k, v in reply.items()]
        columns = ["field", "value"]
    elif isinstance(reply, (list, tuple, set, frozenset)):
        items = sorted(reply, key=str) if isinstance(reply, (set, frozenset)) else list(reply)
        if items and all(isinstance(i, (list, tuple)) for i in items):
            width = max(len(i) for i in items)
            columns = [f"value_{n + 1}" for n in range(width)]
            rows = [tuple(_text(v) for v in i) + (None,) * (width - len(i)) for i in items]
        else:
            columns = ["value"]
            rows = [(_text(i),) for i in items]
    else:
        columns, rows = ["value"], [(_text(reply),)]
    truncated = limit is not None and len(rows) > limit
    if limit is not None:
        rows = rows[:limit]
    return QueryResult(columns=columns, rows=rows, truncated=truncated)


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    return value
