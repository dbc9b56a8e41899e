"""Spark's settings and session helpers: where a session runs, its default conf, Java.

Split from spark.py (the manager); nothing here starts a session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from nbinfra._bounds import PositiveFloat
from nbinfra._secrets import Secret, remember
from nbinfra.connections.settings import ConnectionSettings

__all__ = [
    "CONNECT_CONF",
    "CONNECT_PORT",
    "LOCAL_CONF",
    "NOTEBOOK_CONF",
    "NO_JAVA",
    "QUICK_CONF",
    "SparkSettings",
    "alive",
    "conf_text",
    "find_java",
    "live_session",
    "quiet",
]

CONNECT_PORT = 15002
NO_JAVA = (
    "spark '{name}' needs Java 17 or later for a local session and none was found: "
    "apt-get install openjdk-17-jre-headless (or set JAVA_HOME to a JDK), or set remote "
    "to a Spark Connect server (sc://host:15002)."
)
# A notebook's defaults; ``conf`` entries win. Arrow for pandas in and out, Spark's console
# progress bar off (nbinfra draws its own), few shuffle partitions on one machine.
NOTEBOOK_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.ui.showConsoleProgress": "false",
}
LOCAL_CONF = {"spark.sql.shuffle.partitions": "8"}
# A throwaway local session (tests, benchmarks): no UI, few partitions, loopback only.
QUICK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}
# A Connect session takes runtime SQL settings only (the server's own are fixed).
CONNECT_CONF = {"spark.sql.execution.arrow.pyspark.enabled": "true"}


@dataclass
class SparkSettings(ConnectionSettings):
    """Where Spark runs: ``master`` (classic) or ``remote`` (Spark Connect)."""

    master: str = "local[*]"
    remote: str = ""  # sc://host:15002[/;token=...]: the token is redacted everywhere
    url: str = ""  # either form
    token: Secret = field(default_factory=lambda: Secret(""))  # Spark Connect bearer token
    app_name: str = "nbinfra"
    conf: dict[str, Any] = field(default_factory=dict)  # spark.* settings for the session
    # Spark's log level (the JVM's, and PySpark's query-error loggers, which otherwise
    # print every failed statement as JSON on stderr); nbinfra's errors say it in one line.
    log_level: str = "FATAL"
    embedded_start_timeout: PositiveFloat = 180.0  # seconds for a local session to start

    def __post_init__(self) -> None:
        for url in (self.remote, self.url, self.master):
            for part in url.split(";")[1:]:
                key, _, value = part.partition("=")
                if key.strip().lower() == "token":
                    remember(value)  # redacted from every message from now on

    def connect_url(self) -> str:
        """The Spark Connect URL (token included), or ``""`` for a classic session."""
        url = next((u for u in (self.remote, self.url, self.master) if u), "")
        if not url.startswith("sc://"):
            return ""
        token = self.token.reveal()
        return url.rstrip("/") + f"/;token={token}" if token else url

    def master_url(self) -> str:
        url = self.url
        return url if url and not url.startswith("sc://") else (self.master or "local[*]")

    def target(self) -> str:
        url = self.connect_url()
        if not url:
            return self.master_url()
        base, *params = url.split(";")
        shown = [p for p in params if p.partition("=")[0].strip().lower() != "token"]
        hidden = " (token ********)" if len(shown) < len(params) else ""
        return ";".join([base.rstrip("/"), *shown]) + hidden


def find_java() -> str | None:
    """The java binary a local session would start (JAVA_HOME first, then PATH)."""
    home = os.environ.get("JAVA_HOME", "")
    if home:
        binary = Path(home) / "bin" / "java"
        return str(binary) if binary.exists() else None
    return shutil.which("java")


def live_session() -> Any:
    """The classic session already running in this process, if any."""
    spark = SparkSession._instantiatedSession
    return spark if spark is not None and alive(spark) else None


def alive(spark: Any) -> bool:
    with contextlib.suppress(Exception):
        jsc = spark.sparkContext._jsc
        return jsc is not None and not jsc.sc().isStopped()
    return False


def quiet(level: str) -> None:
    """PySpark's loggers of failed statements at ``level`` (they print each one as JSON)."""
    import logging

    from pyspark.logger import PySparkLogger

    name = level.upper()
    value = logging.CRITICAL + 1 if name in ("FATAL", "OFF") else logging.getLevelName(name)
    for logger in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        with contextlib.suppress(Exception):
            PySparkLogger.getLogger(logger).setLevel(value if isinstance(value, int) else 50)


def conf_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
