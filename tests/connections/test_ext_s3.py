"""S3 manager against moto's S3 server over real HTTP (boto3 with endpoint_url)."""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from nbinfra.connections.s3 import S3ConnectionManager
from nbinfra.errors import ConnectionUnavailableError, QueryError
from nbinfra.testing import S3Server, free_port
from nbinfra.testing.connection_contract import ConnectionContract

SECRET = "s3-sentinel-SECRET-4b1e77"


def s3(server: S3Server, bucket: str | None, **kw: Any) -> S3ConnectionManager:
    settings = {
        "endpoint_url": server.url,
        "region": server.region,
        "access_key_id": server.access_key,
        "secret_access_key": SECRET,  # moto does not check signatures; repr/logs must hide it
        "bucket": bucket,
        "retry_backoff": 0.01,
        **kw,
    }
    return S3ConnectionManager(settings)


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[str]:
    import boto3

    name = f"nbinfra-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
    )
    client.create_bucket(Bucket=name)
    client.put_object(Bucket=name, Key="seed/readme.txt", Body=b"hello")
    yield name
    client.close()


class TestS3Contract(ConnectionContract):
    query = "seed/"
    bad_query = "s3://no-such-bucket-nbinfra/"
    secret = SECRET

    @pytest.fixture
    def manager(self, s3_server: S3Server, bucket: str) -> S3ConnectionManager:
        return s3(s3_server, bucket)

    @pytest.fixture
    def unreachable(self) -> S3ConnectionManager:
        return S3ConnectionManager(
            endpoint_url=f"http://127.0.0.1:{free_port()}",
            region="us-east-1",
            access_key_id="x",
            secret_access_key=SECRET,
            bucket="b",
            connect_timeout=5.0,
            timeout=1.0,
            retries=0,
            max_attempts=1,
        )

    async def sever(self, manager: Any) -> None:
        pytest.skip(
            "plain HTTP requests hold no session to sever; see test_endpoint_dies_then_returns"
        )


async def test_put_get_head_delete(s3_server: S3Server, bucket: str) -> None:
    async with s3(s3_server, bucket) as mgr:
        put = await mgr.put_object(
            "docs/a.txt", "héllo", content_type="text/plain", metadata={"owner": "ada"}
        )
        assert await mgr.get_object("docs/a.txt") == "héllo".encode()
        head = await mgr.head_object("docs/a.txt")
        assert head["size"] == len("héllo".encode()) and head["etag"] == put["etag"]
        assert head["content_type"] == "text/plain" and head["metadata"] == {"owner": "ada"}
        assert await mgr.exists("docs/a.txt")
        await mgr.delete_object("docs/a.txt")
        assert not await mgr.exists("docs/a.txt")
        with pytest.raises(QueryError, match=r"s3://.*/docs/a.txt: not found"):
            await mgr.get_object("docs/a.txt")


async def test_list_paginates_with_prefix_and_limit(s3_server: S3Server, bucket: str) -> None:
    async with s3(s3_server, bucket, page_size=4) as mgr:
        for n in range(10):
            await mgr.put_object(f"logs/{n:02d}.log", f"line {n}")
        await mgr.put_object("other/x", "x")
        listed = await mgr.list_objects("logs/")
        limited = await mgr.execute_query("logs/", limit=5)
        table = await mgr.execute_query(f"s3://{bucket}/other/")
    assert [o["Key"] for o in listed] == [f"logs/{n:02d}.log" for n in range(10)]
    assert len(limited) == 5 and limited.truncated
    assert limited.columns == ["key", "size", "last_modified", "etag", "storage_class"]
    assert table.rows[0][:2] == ("other/x", 1)


async def test_dataframes_round_trip_csv_and_parquet(s3_server: S3Server, bucket: str) -> None:
    import pandas as pd

    frame = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "temp": [3.5, 19.0, 31.25]})
    async with s3(s3_server, bucket) as mgr:
        await mgr.put_dataframe("t/weather.csv", frame)
        await mgr.put_dataframe("t/weather.parquet", frame)
        await mgr.put_dataframe("t/weather.data", frame, format="parquet")
        from_csv = await mgr.get_dataframe("t/weather.csv")
        from_parquet = await mgr.get_dataframe("t/weather.parquet")
        explicit = await mgr.get_dataframe("t/weather.data", format="parquet")
        assert (await mgr.head_object("t/weather.csv"))["content_type"] == "text/csv"
        with pytest.raises(QueryError, match="format='csv'"):
            await mgr.get_dataframe("t/weather.data")
    pd.testing.assert_frame_equal(from_csv, frame)
    pd.testing.assert_frame_equal(from_parquet, frame)
    pd.testing.assert_frame_equal(explicit, frame)


def _http(request: urllib.request.Request | str) -> tuple[int, bytes]:
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status), bytes(answer.read())


async def test_presigned_urls_work_over_http(s3_server: S3Server, bucket: str) -> None:
    async with s3(s3_server, bucket) as mgr:
        put_url = await mgr.presigned_url("shared/p.bin", method="put", expires_in=60)
        request = urllib.request.Request(
            put_url,
            data=b"\x00\x01payload",
            method="PUT",
            # urllib would send a form content type, which the server parses away.
            headers={"Content-Type": "application/octet-stream"},
        )
        assert (await asyncio.to_thread(_http, request))[0] == 200
        get_url = await mgr.presigned_url("shared/p.bin", expires_in=60)
        assert "Expires=" in get_url and "Signature=" in get_url
        assert await asyncio.to_thread(_http, get_url) == (200, b"\x00\x01payload")
        assert await mgr.get_object("shared/p.bin") == b"\x00\x01payload"


async def test_create_and_list_buckets(s3_server: S3Server) -> None:
    name = f"nbinfra-new-{uuid.uuid4().hex[:8]}"
    mgr = s3(s3_server, None)
    async with mgr:
        await mgr.create_bucket(name)
        assert name in await mgr.list_buckets()
        await mgr.put_object("k", b"v", bucket=name)
        assert await mgr.get_object("k", bucket=name) == b"v"
        with pytest.raises(Exception, match="No bucket"):
            await mgr.get_object("k")


async def test_missing_bucket_health_is_down(s3_server: S3Server) -> None:
    mgr = s3(s3_server, "nbinfra-does-not-exist", retries=0)
    status = await mgr.health_check()
    assert not status.ok and "s3://nbinfra-does-not-exist does not exist" in (status.error or "")
    assert mgr.connected  # the endpoint answered: create_bucket() can still make it
    await mgr.create_bucket()
    assert (await mgr.health_check()).ok
    await mgr.disconnect()


async def test_blackhole_endpoint_times_out_with_conn_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Accepts TCP connections but never answers: only the read timeout can end the call.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        mgr = S3ConnectionManager(
            endpoint_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
            access_key_id="x",
            secret_access_key=SECRET,
            bucket="b",
            timeout=0.5,
            retries=0,
            max_attempts=1,
        )
        with caplog.at_level(logging.DEBUG, logger="nbinfra"):
            with pytest.raises(ConnectionUnavailableError, match="did not answer in time"):
                await mgr.connect()
            status = await mgr.health_check()
    assert not status.ok
    assert SECRET not in caplog.text + str(status) + repr(mgr)


async def test_endpoint_dies_then_returns(bucket: str, s3_server: S3Server) -> None:
    """A second moto server on a fixed port is stopped and restarted mid-session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    mgr = S3ConnectionManager(
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="x",
        secret_access_key=SECRET,
        connect_timeout=5.0,  # creating a boto3 client alone can take a second here
        timeout=2.0,
        retries=0,
        max_attempts=1,
    )
    try:
        await mgr.create_bucket("restart-bucket")
        await mgr.put_object("k", b"before", bucket="restart-bucket")
        server.stop()
        with pytest.raises(ConnectionUnavailableError, match="Cannot reach S3"):
            await mgr.get_object("k", bucket="restart-bucket")
        assert not mgr.is_healthy()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        # moto keeps its state in-process, so the object is still there.
        assert await mgr.get_object("k", bucket="restart-bucket") == b"before"
        assert mgr.is_healthy()
    finally:
        await mgr.disconnect()
        server.stop()
