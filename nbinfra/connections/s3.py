"""Amazon S3 (or any S3-compatible store) through boto3.

::

    s3 = ConnectionFactory.get_connection_manager("s3")      # bucket from the yaml
    await s3.connect()
    await s3.put_dataframe("sales/2024.parquet", df)
    df = await s3.get_dataframe("sales/2024.parquet")
    (await s3.execute_query("sales/")).df()                  # key, size, last_modified, etag
    url = await s3.presigned_url("sales/2024.parquet", expires_in=600)

``execute_query(prefix)`` lists objects under ``prefix`` (``s3://bucket/prefix`` picks
another bucket). Listing follows continuation tokens page by page until ``limit``.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from nbinfra._bounds import AtLeastOne, PositiveFloat, Range
from nbinfra._secrets import Secret, mask_url, reveal
from nbinfra.connections._client import ClientManager
from nbinfra.connections.factory import ConnectionRegistry, ConnectionType
from nbinfra.connections.settings import ConnectionSettings, one_line
from nbinfra.connections.types import QueryResult
from nbinfra.errors import (
    ConfigError,
    ConnectionUnavailableError,
    ConnError,
    MissingDependencyError,
    QueryError,
)
from nbinfra.logs import get_logger

__all__ = ["S3ConnectionManager", "S3Settings"]

log = get_logger(__name__)

LIST_COLUMNS = ["key", "size", "last_modified", "etag", "storage_class"]
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_AUTH = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "403",
}


@dataclass
class S3Settings(ConnectionSettings):
    """``connections.s3`` in application-external.yaml (credentials default to boto3's)."""

    bucket: str | None = None
    endpoint_url: str | None = None  # MinIO, moto, Ceph...; empty = AWS
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    session_token: Secret | None = None
    profile: str | None = None
    max_attempts: AtLeastOne = 2  # boto3's own tries per request (standard mode)
    page_size: Annotated[int, Range(ge=1, le=1000)] = 1000  # keys per list request
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    connect_timeout: PositiveFloat = 5.0
    timeout: PositiveFloat = 60.0  # read timeout of one request

    def target(self) -> str:
        where = (
            mask_url(self.endpoint_url) if self.endpoint_url else f"aws:{self.region or 'default'}"
        )
        return f"{where}/{self.bucket}" if self.bucket else where


@ConnectionRegistry.register(ConnectionType.S3)
class S3ConnectionManager(ClientManager):
    """A boto3 S3 client (``client``) bound to a default bucket; every method also takes
    ``bucket=``."""

    kind = "s3"
    label = "S3"
    settings_class = S3Settings
    settings: S3Settings

    # -- lifecycle ------------------------------------------------------------------
    def _open_sync(self) -> None:
        from botocore.config import Config

        s = self.settings
        config = Config(
            connect_timeout=s.connect_timeout,
            read_timeout=s.timeout,
            retries={"max_attempts": max(1, s.max_attempts), "mode": "standard"},
            s3={"addressing_style": s.addressing_style},
        )
        client = _session(s.profile).client(
            "s3",
            endpoint_url=s.endpoint_url or None,
            region_name=s.region or None,
            aws_access_key_id=s.access_key_id or None,
            aws_secret_access_key=reveal(s.secret_access_key) or None,
            aws_session_token=reveal(s.session_token) or None,
            config=config,
        )
        self._keep(client, lambda c: self._probe_bucket(c, missing_ok=True))

    def _ping_sync(self) -> str | None:
        self._probe_bucket(self.client)
        return None

    def _probe_bucket(self, client: Any, *, missing_ok: bool = False) -> None:
        """One authenticated round trip. A missing default bucket fails the health check
        but not ``connect``, so that ``create_bucket()`` can make it."""
        from botocore.exceptions import ClientError

        bucket = self.settings.bucket
        if not bucket:
            client.list_buckets()
            return
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchBucket"):
                raise
            if not missing_ok:
                raise QueryError(
                    f"Bucket s3://{bucket} does not exist at {self.target}; create it "
                    "(create_bucket) or fix bucket in the connection settings."
                ) from exc
            log.warning("s3 '%s': bucket s3://%s does not exist yet", self.name, bucket)

    def _bucket(self, bucket: str | None) -> str:
        chosen = bucket or self.settings.bucket
        if not chosen:
            raise ConfigError(
                f"No bucket for S3 connection '{self.name}': pass bucket=... or set bucket "
                f"under connections.{self.name} in resources/application-external.yaml."
            )
        return str(chosen)

    def _is_idempotent(self, query: Any) -> bool:
        return True  # execute_query only lists

    # -- objects ------------------------------------------------------------------------
    async def list_objects(
        self, prefix: str = "", *, bucket: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Objects under ``prefix`` (``Key``, ``Size``, ``LastModified``...), every page."""
        name = self._bucket(bucket)
        return await self._op(f"list s3://{name}/{prefix}", self._list_sync, name, prefix, limit)

    async def get_object(self, key: str, *, bucket: str | None = None) -> bytes:
        """The bytes of ``key``; ``QueryError`` when it does not exist."""
        name = self._bucket(bucket)
        return await self._op(f"get s3://{name}/{key}", self._get_sync, name, key)

    async def put_object(
        self,
        key: str,
        data: bytes | str,
        *,
        bucket: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Write ``data`` (str is UTF-8 encoded) to ``key``; returns ``etag``/``version_id``.

        A PUT replaces the whole object, so it is safe to retry.
        """
        name = self._bucket(bucket)
        extra: dict[str, Any] = {"Bucket": name, "Key": key}
        extra["Body"] = data.encode() if isinstance(data, str) else bytes(data)
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = dict(metadata)
        answer = await self._op(f"put s3://{name}/{key}", lambda: self.client.put_object(**extra))
        return {"etag": answer.get("ETag"), "version_id": answer.get("VersionId")}

    async def head_object(self, key: str, *, bucket: str | None = None) -> dict[str, Any]:
        """Size, content type, ETag, last modified and metadata of ``key``."""
        name = self._bucket(bucket)
        head = await self._op(
            f"head s3://{name}/{key}", lambda: self.client.head_object(Bucket=name, Key=key)
        )
        return {
            "key": key,
            "size": head.get("ContentLength"),
            "content_type": head.get("ContentType"),
            "etag": head.get("ETag"),
            "last_modified": head.get("LastModified"),
            "metadata": head.get("Metadata", {}),
        }

    async def exists(self, key: str, *, bucket: str | None = None) -> bool:
        """True when ``key`` exists (a HEAD request)."""
        try:
            await self.head_object(key, bucket=bucket)
        except QueryError:
            return False
        return True

    async def delete_object(self, key: str, *, bucket: str | None = None) -> None:
        name = self._bucket(bucket)
        await self._op(
            f"delete s3://{name}/{key}", lambda: self.client.delete_object(Bucket=name, Key=key)
        )

    async def presigned_url(
        self,
        key: str,
        *,
        expires_in: int = 3600,
        method: Literal["get", "put"] = "get",
        bucket: str | None = None,
    ) -> str:
        """A URL anyone can GET (or PUT) for ``expires_in`` seconds, signed locally."""
        if method not in ("get", "put"):
            raise QueryError(f"method must be 'get' or 'put', got {method!r}.")
        name = self._bucket(bucket)
        url: str = await self._op(
            f"presign s3://{name}/{key}",
            lambda: self.client.generate_presigned_url(
                f"{method}_object", Params={"Bucket": name, "Key": key}, ExpiresIn=int(expires_in)
            ),
        )
        return url

    # -- buckets ------------------------------------------------------------------------
    async def list_buckets(self) -> list[str]:
        answer = await self._op("list buckets", lambda: self.client.list_buckets())
        return [b["Name"] for b in answer.get("Buckets", [])]

    async def create_bucket(self, bucket: str | None = None) -> None:
        name = self._bucket(bucket)
        kwargs: dict[str, Any] = {"Bucket": name}
        region = self.settings.region
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        await self._op(
            f"create s3://{name}", lambda: self.client.create_bucket(**kwargs), idempotent=False
        )
        log.info("s3 '%s': created bucket %s", self.name, name)

    # -- DataFrames -----------------------------------------------------------------------
    async def get_dataframe(
        self,
        key: str,
        *,
        bucket: str | None = None,
        format: Literal["csv", "parquet"] | None = None,
        **read_options: Any,
    ) -> Any:
        """Read a CSV or Parquet object into pandas (format from the suffix by default)."""
        pd = _pandas()
        kind = format or _format_of(key)
        data = await self.get_object(key, bucket=bucket)
        if kind == "parquet":
            return pd.read_parquet(io.BytesIO(data), **read_options)
        return pd.read_csv(io.BytesIO(data), **read_options)

    async def put_dataframe(
        self,
        key: str,
        df: Any,
        *,
        bucket: str | None = None,
        format: Literal["csv", "parquet"] | None = None,
        index: bool = False,
    ) -> dict[str, Any]:
        """Write a pandas DataFrame as CSV or Parquet (format from the suffix by default)."""
        kind = format or _format_of(key)
        _pandas()
        buffer = io.BytesIO()
        if kind == "parquet":
            df.to_parquet(buffer, index=index)
            content_type = "application/vnd.apache.parquet"
        else:
            buffer.write(df.to_csv(index=index).encode())
            content_type = "text/csv"
        return await self.put_object(
            key, buffer.getvalue(), bucket=bucket, content_type=content_type
        )

    # -- sync work (worker thread) ------------------------------------------------------
    def _execute_sync(self, query: Any, params: Any, limit: int | None) -> QueryResult:
        if not isinstance(query, str):
            raise QueryError("An S3 query is a key prefix, e.g. 'data/2024/' or 's3://bucket/p'.")
        bucket, prefix = None, query.strip()
        if prefix.startswith("s3://"):
            bucket, _, prefix = prefix[5:].partition("/")
        started = time.perf_counter()
        objects = self._list_sync(self._bucket(bucket), prefix, limit)
        rows = [
            (o["Key"], o.get("Size"), o.get("LastModified"), o.get("ETag"), o.get("StorageClass"))
            for o in objects
        ]
        return QueryResult(
            columns=list(LIST_COLUMNS),
            rows=rows,
            elapsed=time.perf_counter() - started,
            statement=query,
            truncated=limit is not None and len(rows) >= limit,
        )

    def _list_sync(self, bucket: str, prefix: str, limit: int | None) -> list[dict[str, Any]]:
        client = self.client
        found: list[dict[str, Any]] = []
        token: str | None = None
        while limit is None or len(found) < limit:
            size = max(1, self.settings.page_size)
            if limit is not None:
                size = min(size, limit - len(found))
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": size}
            if token:
                kwargs["ContinuationToken"] = token
            page = client.list_objects_v2(**kwargs)
            found.extend(page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                break
        return found

    def _get_sync(self, bucket: str, key: str) -> bytes:
        answer = self.client.get_object(Bucket=bucket, Key=key)
        with answer["Body"] as body:
            return bytes(body.read())

    # -- errors (the one boundary for botocore exceptions) ---------------------------------
    def _translate(self, exc: BaseException, what: str) -> ConnError:
        from botocore import exceptions as bex

        where = f"S3 at {self.target}"
        if isinstance(exc, (bex.ConnectTimeoutError, bex.ReadTimeoutError)):
            return ConnectionUnavailableError(
                f"{where} did not answer in time ({what}); check endpoint_url or raise "
                "connect_timeout/timeout."
            )
        if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectionClosedError)):
            return ConnectionUnavailableError(
                f"Cannot reach {where} ({what}); check endpoint_url and that the service is up."
            )
        if isinstance(exc, bex.NoCredentialsError):
            return ConnError(
                f"No S3 credentials for {where}: set access_key_id and secret_access_key "
                f"under connections.{self.name}, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY."
            )
        if isinstance(exc, bex.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = one_line(str(error.get("Message") or code))
            if code in _NOT_FOUND:
                return QueryError(f"{what}: not found (S3 {code}).")
            if code == "NoSuchBucket":
                return QueryError(f"{what}: no such bucket; create it first (create_bucket).")
            if code in _AUTH:
                return ConnError(
                    f"{where} refused the credentials ({code}) for {what}; check "
                    "access_key_id/secret_access_key."
                )
            return QueryError(f"S3 refused {what}: {code}: {message}")
        if isinstance(exc, bex.BotoCoreError):
            return ConnError(f"{where}: {what} failed: {type(exc).__name__}: {one_line(str(exc))}")
        return super()._translate(exc, what)


_sessions: dict[str | None, Any] = {}
_sessions_lock = threading.Lock()


class _LockedSession:
    """A boto3 session shared per profile: its loader caches the service models, so a
    reconnect costs milliseconds instead of a second. Client creation is serialised
    because sessions are not thread-safe."""

    def __init__(self, profile: str | None) -> None:
        import boto3

        self._session = boto3.session.Session(profile_name=profile)
        self._lock = threading.Lock()

    def client(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._session.client(*args, **kwargs)


def _session(profile: str | None) -> _LockedSession:
    with _sessions_lock:
        found = _sessions.get(profile)
        if found is None:
            found = _sessions[profile] = _LockedSession(profile)
        return found


def _pandas() -> Any:
    try:
        import pandas as pd
        import pyarrow  # noqa: F401 - Parquet needs it; check both at once
    except ImportError as exc:
        hint = "pip install 'nbinfra[pandas]'"
        raise MissingDependencyError(
            f"DataFrames on S3 need pandas and pyarrow: {hint}", hint=hint
        ) from exc
    return pd


def _format_of(key: str) -> str:
    lowered = key.lower()
    for suffix, kind in _FORMATS.items():
        if lowered.endswith(suffix):
            return kind
    raise QueryError(
        f"Cannot tell the format of '{key}' from its suffix; pass format='csv' or format='parquet'."
    )
