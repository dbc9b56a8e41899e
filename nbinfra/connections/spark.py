"""Spark: Spark SQL on a local PySpark session, a cluster master, or a Spark Connect server.

- **Where**: ``master`` (default ``local[*]``: a JVM in this process's machine) for a
  classic session; ``remote`` (``sc://host:15002``, optionally with ``;token=...``, or a
  ``token`` setting) for Spark Connect. A ``url`` (or ``master``) starting ``sc://`` means
  Connect too. ``nbinfra.conn("spark")`` works with no settings at all (``local[*]``).
- **Lazy**: importing nbinfra imports no pyspark; the session starts on first use (a JVM
  takes 10-20 s), bounded by ``embedded_start_timeout``. A classic session already running
  in the process (one the notebook made itself) is used as it is and left running on
  close; one this manager started is stopped by ``disconnect``. Without Java a local
  session fails with one line saying how to get it.
- **SQL**: ``%%conn spark`` cells are split by Spark's lexical rules (sparktext.py) and each
  statement runs as ``spark.sql(statement, args={...})``: ``:name`` binds are Spark's own
  named parameters, values never pasted into the text.
- **Notebook DataFrames** named in a statement (``SELECT * FROM df``) are registered as
  temporary views for that statement (``sql(..., frames={"df": obj})``: pandas, Polars,
  Arrow or a Spark DataFrame) and dropped afterwards, so a changed DataFrame is seen on
  the next run; a table or view of that name in the catalog wins.
- **Results** are collected once, as Arrow (``DataFrame.toArrow()``); ``limit`` collects
  ``limit + 1`` rows (``df.limit``) to tell ``truncated``. ``df()`` converts that table to
  pandas the way ``toPandas()`` does, ``arrow()`` returns it.
- **Progress and interrupts**: each statement's jobs run in a job group of their own
  (sparkjobs.py); nbinfra's progress display follows its stages (classic sessions; Spark
  Connect shows elapsed time only), and an interrupt or a time limit cancels the group,
  running tasks included, leaving the session usable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from pyspark.sql import SparkSession

from nbinfra._deadline import within
from nbinfra._interrupt import call_interruptibly
from nbinfra.connections import sparktext
from nbinfra.connections.base import BaseConnectionManager
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.inline import driven
from nbinfra.connections.settings import one_line
from nbinfra.connections.sparkframes import SparkResult, collect, quiet_pandas, to_spark
from nbinfra.connections.sparkjobs import JobGroup
from nbinfra.connections.sparksettings import (
    CONNECT_CONF,
    CONNECT_PORT,
    LOCAL_CONF,
    NO_JAVA,
    NOTEBOOK_CONF,
    QUICK_CONF,
    SparkSettings,
    alive,
    conf_text,
    find_java,
    live_session,
    quiet,
)
from nbinfra.connections.types import QueryResult
from nbinfra.errors import (
    ConnectionUnavailableError,
    ConnError,
    MissingDependencyError,
    QueryError,
    RegistryError,
)
from nbinfra.progress import Progress

__all__ = ["QUICK_CONF", "SparkConnectionManager", "SparkResult", "SparkSettings"]

T = TypeVar("T")

CANCELLED = "Interrupted: the Spark jobs were cancelled (running tasks interrupted)"


@ConnectionRegistry.register(ConnectionType.SPARK)
class SparkConnectionManager(BaseConnectionManager):
    """Spark SQL over a classic or Spark Connect session; see the module's docstring."""

    kind = "spark"
    speaks_sql = True
    dialect_name = "spark"
    bind_style = ":name"
    frames_by_name: ClassVar[bool] = True
    settings_class = SparkSettings
    interrupted = CANCELLED

    settings: SparkSettings

    def __init__(self, settings: Any = None, *, name: str | None = None, **overrides: Any) -> None:
        super().__init__(settings, name=name, **overrides)
        self._spark: Any = None
        self._owned = False  # this manager started the session (and stops it)
        self._runner: concurrent.futures.ThreadPoolExecutor | None = None
        self._views = threading.RLock()  # temp views of one statement at a time
        self.last_group: JobGroup | None = None  # the most recent statement's jobs

    # -- what the registry reads ----------------------------------------------------------
    @classmethod
    def split_script(cls, script: str) -> list[str]:
        """Statements by Spark SQL's lexical rules (see sparktext.py)."""
        return sparktext.split_script(script)

    @classmethod
    def bind_names(cls, statement: str) -> list[str]:
        return sparktext.bind_names(statement)

    @classmethod
    def inline_settings(cls, target: str) -> dict[str, Any] | None:
        """``spark:sc://host:15002`` is a Spark Connect server, ``spark:local[4]`` or
        ``spark:spark://host:7077`` a master."""
        if target.startswith("sc://"):
            return {"remote": target}
        if target.startswith(("local", "spark://", "yarn", "k8s://")):
            return {"master": target}
        return None

    def table_names(self, statement: str) -> list[str]:
        """The single-part table names ``statement`` reads: by the JVM's own parser on a
        connected classic session, else (Spark Connect, or before a session exists) by
        sqlglot's ``spark`` dialect."""
        if self._connected and self.classic:
            found = sparktext.jvm_tables_read(self._spark._jsparkSession, statement)
            if found is not None:
                return found
        return sparktext.tables_read(statement)

    # -- state ----------------------------------------------------------------------------
    @property
    def classic(self) -> bool:
        """True for a classic session (py4j and a JVM here), False for Spark Connect."""
        return not self.settings.connect_url()

    @property
    def session(self) -> Any:
        """The live ``SparkSession`` (started on first access)."""
        if not self._connected:
            from nbinfra import _loop

            _loop.run_sync(self.connect())
        return self._require()

    @property
    def pending_start(self) -> str | None:
        if self._connected or not self.classic or live_session() is not None:
            return None
        return f"a local Spark session ({self.settings.master_url()})"

    @property
    def runs_here(self) -> bool:
        """Once open, statements run from the caller's thread: there an interrupt and
        the progress display reach them (see the module's docstring)."""
        return self._connected and self._spark is not None

    # -- lifecycle ------------------------------------------------------------------------
    async def connect(self) -> None:
        """Start a local session first when none runs, within ``embedded_start_timeout``."""
        if not self._connected and self.classic and self._spark is None:
            bound = self.settings.embedded_start_timeout
            try:
                await within(self.to_thread(self._start_local), bound)
            except RegistryError:
                raise
            except Exception as exc:
                if isinstance(exc, TimeoutError):
                    raise ConnectionUnavailableError(
                        f"spark '{self.name}': the local session did not start within "
                        f"{bound:g} s; raise embedded_start_timeout under connections."
                        f"{self.name}."
                    ) from exc
                raise self._error(exc, "start", bound) from exc
        await super().connect()

    def _open_sync(self) -> None:
        if self._spark is not None and (not self.classic or alive(self._spark)):
            return
        self._spark = None
        if self.classic:
            self._start_local()
        else:
            self._open_remote()

    def _start_local(self) -> None:
        quiet(self.settings.log_level)
        live = live_session()
        if live is not None:
            self._spark, self._owned = live, False
            return
        if find_java() is None:
            raise MissingDependencyError(NO_JAVA.format(name=self.name))
        s = self.settings
        master = s.master_url()
        builder = SparkSession.Builder().master(master).appName(s.app_name)
        conf = {**NOTEBOOK_CONF, **(LOCAL_CONF if master.startswith("local") else {}), **s.conf}
        for key, value in conf.items():
            builder = builder.config(str(key), conf_text(value))
        with quiet_pandas():  # PySpark warns about pandas 3 while it starts
            spark = builder.getOrCreate()
        with contextlib.suppress(Exception):
            spark.sparkContext.setLogLevel(s.log_level)
        self._spark, self._owned = spark, True

    def _open_remote(self) -> None:
        url = self.settings.connect_url()
        parts = urlsplit(url.split(";")[0].replace("sc://", "http://", 1))
        host, port = parts.hostname or "localhost", parts.port or CONNECT_PORT
        # gRPC would retry a dead endpoint for minutes: a refused port fails here at once.
        with socket.create_connection((host, port), timeout=self.settings.connect_timeout):
            pass
        # The Connect session class itself: PySpark's generic builder would also switch the
        # whole process to Connect mode (SPARK_CONNECT_MODE_ENABLED), breaking any classic
        # session used beside it.
        with quiet_pandas():
            from pyspark.sql.connect.session import SparkSession as ConnectSession

        builder = ConnectSession.Builder().remote(url)
        for key, value in {**CONNECT_CONF, **self.settings.conf}.items():
            builder = builder.config(str(key), conf_text(value))
        with quiet_pandas():
            spark = builder.create()
        quiet(self.settings.log_level)
        try:
            spark.version  # noqa: B018 - the first round trip: the server answers
        except BaseException:
            with contextlib.suppress(Exception):
                spark.stop()
            raise
        self._spark, self._owned = spark, True

    def _close_sync(self) -> None:
        spark, self._spark = self._spark, None
        owned, self._owned = self._owned, False
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.shutdown(wait=False)
        if spark is not None and owned:
            spark.stop()

    def _ping_sync(self) -> str | None:
        spark = self._require()
        spark.sql("SELECT 1").collect()
        return f"Spark {spark.version}" + ("" if self.classic else " (Connect)")

    def _probe(self) -> bool:
        spark = self._spark
        if spark is None:
            return False
        if self.classic:
            return alive(spark)
        return not getattr(spark, "is_stopped", False)

    def _require(self) -> Any:
        if self._spark is None:
            raise ConnectionUnavailableError(f"spark '{self.name}' is not connected.")
        return self._spark

    # -- queries --------------------------------------------------------------------------
    async def sql(
        self,
        query: str,
        params: Any = None,
        *,
        limit: int | None = None,
        frames: Mapping[str, object] | None = None,
    ) -> QueryResult:
        """Run Spark SQL (every statement; the last one's result). ``frames`` maps a name
        the statement reads to a notebook DataFrame, registered as a temporary view for
        the statement and dropped afterwards."""
        return await self._call(
            lambda: self._off_caller(self._script, query, params, limit, frames),
            what="query",
            idempotent=not frames and self._is_idempotent(query),
        )

    async def _execute(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return await self._off_caller(self._script, query, params, limit, None)

    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        return self._script(query, params, limit, None, None)

    async def _off_caller(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args, groups)`` on the caller's thread when driven there (inline.py), else
        in the worker thread; a cancelled await cancels the Spark jobs it started."""
        if driven():
            return fn(*args, None)
        groups: list[JobGroup] = []
        try:
            return await self.to_thread(fn, *args, groups)
        except asyncio.CancelledError:
            for group in groups:
                group.cancel()
            raise

    def _script(
        self,
        query: Any,
        params: Any,
        limit: int | None,
        frames: Mapping[str, object] | None,
        groups: list[JobGroup] | None,
    ) -> QueryResult:
        if not isinstance(query, str):
            raise QueryError(f"spark queries are Spark SQL text, not {type(query).__name__}.")
        if params is not None and not isinstance(params, Mapping):
            raise QueryError("spark binds are named (:name): give params as a mapping.")
        statements = sparktext.split_script(query) or [query]
        results = [self._statement(s, params, limit, frames, groups) for s in statements]
        return results[-1]

    def _statement(
        self,
        statement: str,
        params: Mapping[str, Any] | None,
        limit: int | None,
        frames: Mapping[str, object] | None,
        groups: list[JobGroup] | None,
    ) -> QueryResult:
        spark = self._require()
        args = _args(statement, params)
        group = JobGroup(spark, classic=self.classic, description=f"nbinfra: {statement}")
        self.last_group = group
        if groups is not None:
            groups.append(group)
        start = time.perf_counter()

        def action() -> SparkResult:
            with group, self._temp_views(spark, frames):
                frame = spark.sql(statement, args=args) if args else spark.sql(statement)
                return collect(frame, limit, classic=self.classic)

        progress = Progress(f"{self.name}: Spark job")
        result = call_interruptibly(
            self._query_thread(),
            action,
            interrupt=group.cancel,
            cancelled=CANCELLED,
            progress=progress,
            poll=lambda: group.percent(progress),
            timeout=self.settings.timeout,
        )
        result.elapsed = time.perf_counter() - start
        result.statement = statement
        return result

    @contextlib.contextmanager
    def _temp_views(self, spark: Any, frames: Mapping[str, object] | None) -> Iterator[None]:
        """Each frame as a temporary view of its name for the statement, then dropped."""
        if not frames:
            yield
            return
        with self._views:
            made: list[str] = []
            try:
                for name, frame in frames.items():
                    if not sparktext.is_name(name):
                        raise QueryError(f"Cannot use {name!r} as a view name in Spark SQL.")
                    if spark.catalog.tableExists(name):
                        continue  # a table or view of that name wins, as in DuckDB
                    to_spark(spark, frame, name).createOrReplaceTempView(name)
                    made.append(name)
                yield
            finally:
                for name in made:
                    with contextlib.suppress(Exception):
                        spark.catalog.dropTempView(name)

    def _query_thread(self) -> concurrent.futures.Executor:
        runner = self._runner
        if runner is None:
            runner = self._runner = concurrent.futures.ThreadPoolExecutor(
                max_workers=4, thread_name_prefix=f"nbinfra-spark-{self.name}"
            )
        return runner

    # -- errors ---------------------------------------------------------------------------
    def _error(self, exc: BaseException, what: str, timeout: float | None) -> ConnError:
        if isinstance(exc, TimeoutError) and what == "query":
            # Its jobs were cancelled already (call_interruptibly); the session is fine.
            return QueryError(
                f"spark '{self.name}' {what} was cancelled after {self.settings.timeout:g} s; "
                "raise the timeout setting for longer queries."
            )
        return super()._error(exc, what, timeout)

    def _translate(self, exc: BaseException, what: str) -> ConnError:
        detail = _detail(exc)
        if self._is_disconnect(exc):
            return ConnectionUnavailableError(
                f"spark '{self.name}' at {self.target} is unavailable ({what}): {detail}"
            )
        return QueryError(f"spark '{self.name}' {what} failed: {detail}")

    def _is_disconnect(self, exc: BaseException) -> bool:
        from py4j.protocol import Py4JJavaError, Py4JNetworkError  # type: ignore[import-untyped]

        if isinstance(exc, Py4JJavaError):
            return False  # the JVM answered: the statement failed
        if isinstance(exc, (Py4JNetworkError, ConnectionError, OSError)):
            return True
        condition = _condition(exc)
        if condition == "JAVA_GATEWAY_EXITED" or condition.startswith("SESSION_"):
            return True
        code = getattr(exc, "getGrpcStatusCode", None) or getattr(exc, "code", None)
        with contextlib.suppress(Exception):
            return callable(code) and "UNAVAILABLE" in str(code())
        return False


def _condition(exc: BaseException) -> str:
    """A PySpark error's condition (``TABLE_OR_VIEW_NOT_FOUND``...), or ``""``."""
    for name in ("getCondition", "getErrorClass"):
        get = getattr(exc, name, None)
        if callable(get):
            with contextlib.suppress(Exception):
                return str(get() or "")
    return ""


def _detail(exc: BaseException) -> str:
    """One line for ``exc``: a Java exception's own message, not py4j's call preamble."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):
            return one_line(str(java.toString())) or type(exc).__name__
    return one_line(str(exc)) or type(exc).__name__


def _args(statement: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The values of the statement's ``:name`` markers (a missing one named)."""
    names = sparktext.bind_names(statement)
    if not names:
        return {}
    given = params or {}
    missing = [n for n in names if n not in given]
    if missing:
        raise QueryError(
            f"The query uses parameter(s) {', '.join(missing)} that were not given "
            f"(given: {', '.join(sorted(map(str, given))) or 'none'})."
        )
    return {n: given[n] for n in names}
