"""MongoDB through pymongo's ``MongoClient`` (sync), awaited through a worker thread.

::

    mongo = ConnectionFactory.get_connection_manager("mongodb")
    await mongo.connect()
    await mongo.insert_many("users", [{"name": "ada", "age": 36}, {"name": "alan", "age": 41}])
    await mongo.find("users", {"age": {"$gt": 40}})            # documents
    (await mongo.execute_query('users {"age": {"$gt": 40}}')).df()
    await mongo.execute_query('[{"$group": {"_id": null, "n": {"$sum": 1}}}]',
                              {"collection": "users"})

``execute_query`` takes a filter (JSON object) or an aggregation pipeline (JSON array),
as text or as Python objects, optionally prefixed by the collection name; otherwise the
collection comes from ``params["collection"]`` or the configured ``collection``. JSON is
MongoDB Extended JSON (``{"$oid": ...}``, ``{"$date": ...}``).

No URL configured: an embedded server, nx-27017 (MongoDB's wire protocol over SQLite,
``embedded_mongo.py``) with its data under ``embedded_dir``, started on the first connect
and again after it died. Without the nx-27017 package, mongomock stands in (announced).

The URL ``mongomock://host/database`` uses mongomock, an in-process stand-in with the
same API (for tests and demos); clients for the same host share one store, so data
survives a reconnect.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from nbinfra._bounds import PositiveFloat
from nbinfra._deadline import within
from nbinfra._secrets import Secret, mask_url, reveal
from nbinfra.connections._client import ClientManager
from nbinfra.connections.embedded_mongo import (
    DEFAULT_MONGODATA,
    MOCK_SCHEME,
    embedded_mongodb_running,
    embedded_mongodb_url,
    mongomock_client,
    nx_available,
    url_without_one,
)
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.mongo_docs import DocumentsMixin
from nbinfra.connections.mongo_query import (
    Documents,
    documents_table,
    parse_query,
)
from nbinfra.connections.settings import ConnectionSettings, one_line
from nbinfra.connections.types import HealthStatus, QueryResult
from nbinfra.errors import ConnectionUnavailableError, ConnError, QueryError
from nbinfra.logs import get_logger

__all__ = ["MongoDBConnectionManager", "MongoDBSettings", "documents_table", "parse_query"]

log = get_logger(__name__)

_ERRNO = re.compile(r"\[Errno -?\d+\]\s*")
# pymongo looks at its server-selection deadline every half second (its minimum heartbeat
# interval), so it may pass that deadline by up to this much.
_SELECTION_OVERRUN = 0.6


@dataclass
class MongoDBSettings(ConnectionSettings):
    """``connections.mongodb`` in application-db.yaml."""

    # repr=False: a URL may carry a password; target() shows it masked. Empty: embedded.
    url: str = field(default="", repr=False)
    database: str | None = None  # default: the database in the URL, else "nbinfra"
    collection: str | None = None  # used by execute_query when none is named
    username: str | None = None
    password: Secret | None = None
    connect_timeout: PositiveFloat = 5.0  # server selection and connect (seconds)
    timeout: PositiveFloat = 60.0  # one operation on the socket
    embedded_dir: str = DEFAULT_MONGODATA  # the embedded server's data (no url)
    embedded_start_timeout: PositiveFloat = 30.0  # seconds for the embedded server to start

    @property
    def embedded(self) -> bool:
        return not self.url

    def target(self) -> str:
        return f"embedded ({self.embedded_dir})" if self.embedded else mask_url(self.url)


@ConnectionRegistry.register(ConnectionType.MONGODB)
class MongoDBConnectionManager(DocumentsMixin, ClientManager):
    """One pymongo (or mongomock) ``MongoClient`` (``client``, with its own pool) bound to
    a default database."""

    kind = "mongodb"
    default_port = 27017  # a refused port fails at once, not after server selection
    tcp_schemes = ("mongodb",)
    label = "MongoDB"
    settings_class = MongoDBSettings
    settings: MongoDBSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._no_answer_reason = ""  # pymongo's reason for the last failed server selection
        self._deadline: float | None = None  # time.monotonic() by which connect() must end
        self._url = ""  # what the client was opened on (the embedded server's, if none set)

    # -- embedded server --------------------------------------------------------------
    @property
    def pending_start(self) -> str | None:
        """The embedded server when it is not running yet (``%conn list`` leaves it so)."""
        s = self.settings
        if not s.embedded or self.connected or not nx_available():
            return None
        if embedded_mongodb_running(s.embedded_dir):
            return None
        return f"the embedded MongoDB (nx-27017) under {s.embedded_dir}"

    async def start_embedded(self) -> None:
        """Start the embedded server (or find it running), within ``embedded_start_timeout``."""
        s = self.settings
        if not s.embedded or not nx_available():
            return
        try:
            await within(
                asyncio.to_thread(embedded_mongodb_url, s.embedded_dir, s.embedded_start_timeout),
                s.embedded_start_timeout,
            )
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise ConnectionUnavailableError(
                f"The embedded MongoDB under {s.embedded_dir} did not start within "
                f"{s.embedded_start_timeout:g} s; raise embedded_start_timeout for connection "
                f"'{self.name}', or set MONGODB_URL to use another server."
            ) from exc

    def _url_in_use(self) -> str:
        s = self.settings
        if not s.embedded:
            return s.url
        return url_without_one(s.embedded_dir, s.embedded_start_timeout, s.database, self.name)

    @property
    def _mock(self) -> bool:
        return (self._url or self.settings.url).startswith(MOCK_SCHEME)

    # -- lifecycle ------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the client; all tries together are bounded by ``connect_timeout``.

        pymongo's server selection already keeps trying for most of ``connect_timeout``,
        so the base class's retries of it would only multiply the wait for a stopped
        server (three times four seconds by default).
        """
        if self.connected:
            return
        if self.settings.embedded:
            await self.start_embedded()
        self._no_answer_reason = ""
        self._deadline = time.monotonic() + self.settings.connect_timeout
        try:
            await within(super().connect(), self.settings.connect_timeout)
        except (TimeoutError, asyncio.TimeoutError) as exc:
            raise ConnectionUnavailableError(self._no_answer("connect")) from exc
        finally:
            self._deadline = None

    async def health_check(self) -> HealthStatus:
        """Ping (connecting first if needed) within ``connect_timeout`` as a whole; never raises."""
        start = time.perf_counter()
        try:
            return await within(super().health_check(), self.settings.connect_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            pass  # a server lost after connecting: the ping, then the reconnect, took too long
        status = HealthStatus(
            ok=False,
            kind=self.kind,
            target=self.target,
            latency=time.perf_counter() - start,
            error=self._no_answer("health check"),
            checked_at=time.time(),
        )
        self._healthy = False
        self._last_status = status
        return status

    def _no_answer(self, what: str) -> str:
        """One line for a server that did not answer: where, why if known, what to do."""
        reason = f": {self._no_answer_reason}" if self._no_answer_reason else ""
        return (
            f"MongoDB '{self.name}' at {self.target} did not answer the {what} within "
            f"{self.settings.connect_timeout:g} s{reason}; start the server or fix url under "
            f"connections.{self.name} in resources/application-db.yaml, or raise "
            "connect_timeout there."
        )

    def _refused(self, reason: str) -> ConnError:
        return ConnectionUnavailableError(
            f"MongoDB '{self.name}' at {self.target} refused the connection ({reason}); start "
            f"the server or fix url under connections.{self.name} in "
            "resources/application-db.yaml."
        )

    def _open_sync(self) -> None:
        self._keep(self._make_client(), self._first_ping)

    def _first_ping(self, client: Any) -> None:
        deadline = self._deadline
        if deadline is None or self._mock:
            client.admin.command("ping")
            return
        import pymongo

        # Within what is left of connect()'s budget (importing pymongo took some), so
        # pymongo's own error (which server, why) comes before that deadline.
        with pymongo.timeout(max(0.05, deadline - time.monotonic() - _SELECTION_OVERRUN)):
            client.admin.command("ping")

    def _make_client(self) -> Any:
        s = self.settings
        url = self._url = self._url_in_use()
        if url.startswith(MOCK_SCHEME):
            return mongomock_client(url)
        import pymongo

        # A little under the manager's own connect deadline, so pymongo's more precise
        # error (which server, why) arrives before the generic timeout does.
        selection_ms = max(1, int(s.connect_timeout * 800))
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": selection_ms,
            "connectTimeoutMS": selection_ms,
            "socketTimeoutMS": max(1, int(s.timeout * 1000)),
            "appname": "nbinfra",
        }
        if s.username:
            options["username"] = s.username
            options["password"] = reveal(s.password) or ""
        return pymongo.MongoClient(url, **options)

    def _ping_sync(self) -> str | None:
        client = self.client
        client.admin.command("ping")
        # buildInfo, not server_info(): nx-27017 answers that one's lowercase alias without a
        # version (and mongomock has only server_info()).
        info = client.server_info() if self._mock else client.admin.command("buildInfo")
        version = info.get("version")
        mock = " (mongomock)" if self._mock else ""
        nx = " (nx-27017)" if info.get("process") == "nx_27017" else ""
        return f"MongoDB {version}{mock}{nx}" if version else None

    @property
    def database(self) -> Any:
        """The default database object."""
        return self.client[self._database_name()]

    def _database_name(self) -> str:
        s = self.settings
        if s.database:
            return s.database
        url = self._url or s.url
        if url.startswith(MOCK_SCHEME):
            return urlsplit(url).path.strip("/") or "nbinfra"
        if not url:
            return "nbinfra"
        from pymongo.uri_parser import parse_uri

        try:
            parsed = parse_uri(url)
        except Exception:  # noqa: BLE001 - the client reports a bad URL on connect
            return "nbinfra"
        return str(parsed.get("database") or "nbinfra")

    def _collection(self, name: str) -> Any:
        if not isinstance(name, str) or not name:
            raise QueryError("A collection name is required (a non-empty string).")
        return self.database[name]

    def _is_idempotent(self, query: Any) -> bool:
        return True  # execute_query only reads (find or aggregate)

    # -- the uniform query (worker thread) -------------------------------------------------
    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        options = dict(params) if isinstance(params, Mapping) else {}
        collection, body = parse_query(query, options.pop("collection", None))
        collection = collection or self.settings.collection
        if not collection:
            raise QueryError(
                "No collection: write 'users {...}', pass params={'collection': 'users'}, or "
                f"set collection under connections.{self.name} in resources/application-db.yaml."
            )
        started = time.perf_counter()
        if isinstance(body, list):
            docs = self._aggregate_sync(collection, body, limit)
        else:
            docs = self._find_sync(
                collection,
                body,
                options.get("projection"),
                options.get("sort"),
                int(options.get("skip", 0)),
                limit,
            )
        result = documents_table(docs)
        result.elapsed = time.perf_counter() - started
        result.statement = query if isinstance(query, str) else repr(query)
        result.truncated = limit is not None and len(docs) >= limit
        result.native = Documents(docs)
        return result

    def _find_sync(
        self,
        collection: str,
        filter: dict[str, Any],
        projection: Any,
        sort: Any,
        skip: int,
        limit: int | None,
    ) -> list[dict[str, Any]]:
        cursor = self._collection(collection).find(filter, projection)
        if sort:
            cursor = cursor.sort([(str(k), int(v)) for k, v in sort])
        if skip:
            cursor = cursor.skip(int(skip))
        if limit is not None:
            cursor = cursor.limit(int(limit))
        return list(cursor)

    def _aggregate_sync(
        self, collection: str, pipeline: list[Any], limit: int | None
    ) -> list[dict[str, Any]]:
        if limit is not None:
            pipeline = [*pipeline, {"$limit": int(limit)}]
        return list(self._collection(collection).aggregate(pipeline))

    # -- errors (the one boundary for pymongo exceptions) ---------------------------------
    def _translate(self, exc: BaseException, what: str) -> ConnError:
        from pymongo import errors as pe

        where = f"MongoDB at {self.target}"
        if isinstance(exc, pe.ServerSelectionTimeoutError):
            self._no_answer_reason = _selection_reason(exc)
            return ConnectionUnavailableError(self._no_answer(what))
        if isinstance(exc, pe.NetworkTimeout) and what == "connect":
            return ConnectionUnavailableError(self._no_answer(what))  # the first ping's limit
        if isinstance(exc, pe.NetworkTimeout):
            return ConnectionUnavailableError(
                f"{where} did not answer within {self.settings.timeout:g} s ({what}); check "
                f"that the server is up, or raise timeout under connections.{self.name}."
            )
        if isinstance(exc, (pe.AutoReconnect, pe.ConnectionFailure)):
            return ConnectionUnavailableError(f"Lost the connection to {where} ({what}).")
        if isinstance(exc, pe.InvalidOperation) and "after close" in str(exc):
            return ConnectionUnavailableError(f"The client for {where} was closed ({what}).")
        if isinstance(exc, (pe.InvalidURI, pe.ConfigurationError)):
            return ConnError(f"Invalid MongoDB settings for {where}: {one_line(str(exc))}")
        if isinstance(exc, pe.OperationFailure) and exc.code in (13, 18):
            return ConnError(
                f"{where} refused the credentials or permission (code {exc.code}); check "
                f"username/password under connections.{self.name}."
            )
        if isinstance(exc, pe.PyMongoError):
            return QueryError(f"{where}: {what} failed: {one_line(str(exc))}")
        if isinstance(exc, NotImplementedError):
            return QueryError(f"mongomock cannot run {what}: {one_line(str(exc))}")
        return super()._translate(exc, what)


def _selection_reason(exc: BaseException) -> str:
    """pymongo's why, shortened: ``127.0.0.1:27017: Connection refused``."""
    text = one_line(str(exc), limit=1000)
    for tail in (" (configured timeouts", ", Timeout:"):
        text = text.split(tail, 1)[0]
    text = _ERRNO.sub("", text).strip().rstrip(",")
    return text if len(text) <= 120 else text[:117] + "..."
