"""One local Spark session for the whole test run (a JVM takes seconds to start).

Its Spark Connect server (the plugin in PySpark's own jars) listens on a free loopback
port, so the Connect tests use the same JVM. Without Java the Spark tests skip with one
line, unless ``NBINFRA_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbinfra.testing import free_port, service_unavailable

CONNECT_SERVER_CONF = {
    "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
    "spark.connect.grpc.binding.address": "127.0.0.1",
}


def java_found() -> bool:
    home = os.environ.get("JAVA_HOME", "")
    if home:
        return (Path(home) / "bin" / "java").exists()
    return shutil.which("java") is not None


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A classic local[2] SparkSession with a Spark Connect server (``.connect_url``)."""
    if not java_found():
        service_unavailable("Java (for Spark)", "apt-get install openjdk-17-jre-headless")
    pytest.importorskip("pyspark")
    # The Connect client reads sys.modules["__main__"].__spec__ on import; the notebook
    # tests' teardown (user_ns.clear()) empties IPython's __main__ module, that included.
    main = sys.modules["__main__"]
    if not hasattr(main, "__spec__"):
        main.__spec__ = None
    from pyspark.sql import SparkSession

    from nbinfra.connections.spark import QUICK_CONF
    from nbinfra.connections.sparkframes import quiet_pandas

    with quiet_pandas():
        import pyspark.sql.connect.session  # noqa: F401

    port = free_port()
    builder = SparkSession.Builder().master("local[2]").appName("nbinfra-tests")
    conf = {
        **QUICK_CONF,
        **CONNECT_SERVER_CONF,
        "spark.connect.grpc.binding.port": str(port),
        "spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("spark-warehouse")),
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    # PySpark's SparkContext takes over SIGINT (cancelling every job of the context):
    # given back, so the rest of the run keeps its handler and the interrupt tests see
    # nbinfra's own cancel of the statement's job group.
    previous = signal.getsignal(signal.SIGINT)
    spark = builder.getOrCreate()
    signal.signal(signal.SIGINT, previous)
    spark.sparkContext.setLogLevel("FATAL")
    spark.connect_url = f"sc://127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        yield spark
    finally:
        spark.stop()
