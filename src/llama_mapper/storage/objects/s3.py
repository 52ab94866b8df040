"""The production object store: any S3-compatible service, through boto3 in a worker thread.

Write-once, strongest first (``protection()`` says which one this bucket gets):

1. **Object Lock** (bucket created with Object Lock enabled; detected with
   ``GetObjectLockConfiguration``): a ``retain`` put is stored with
   ``ObjectLockMode=COMPLIANCE`` and a retain-until date ``object_lock_days`` ahead. Until
   then no one, the bucket's owner and the root account included, can delete or overwrite
   that object version.
2. **If-None-Match** (no Object Lock): the put carries ``If-None-Match: *``, so the
   service refuses to replace an existing key atomically; but whoever holds write or
   delete rights on the bucket can still remove the object. Weaker, said so in ``/ready``.
3. **Head check** (a service that rejects conditional writes with ``NotImplemented``):
   look first, then write. Two racing writers can both succeed; weakest, also reported.

Every put of a write-once object also refuses to overwrite (1 uses ``If-None-Match`` too:
in a versioned bucket a second put would otherwise add a newer version), and
:meth:`S3ObjectStore.delete` refuses objects marked write-once or under a lock.

Credentials come from the :class:`~llama_mapper.secrets.SecretProvider` by secret *name*;
the client is rebuilt when a secret's version changes, so rotation needs no restart.
Errors become :mod:`~llama_mapper.storage.objects._base` errors whose messages name the
bucket, the endpoint host and the S3 error code, never a key or secret value.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from llama_mapper.secrets import SecretError
from llama_mapper.storage.objects._base import (
    ObjectExists,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    ObjectStoreError,
    ObjectStoreUnavailable,
    Protection,
    check_key,
    check_prefix,
)

T = TypeVar("T")

WRITE_ONCE_META = "write-once"
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
)
_DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "Forbidden"})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


@dataclass(frozen=True)
class S3Credentials:
    """One version of the access key pair; ``version`` changes when either is rotated."""

    access_key: str
    secret_key: str
    version: str

    def __repr__(self) -> str:  # never print the keys
        return f"S3Credentials(version={self.version!r})"


#: Returns the current credentials, or ``None`` for boto3's default chain (instance role).
CredentialSource = Callable[[], S3Credentials | None]


class S3ObjectStore:
    """Objects in ``bucket`` under ``prefix``; one boto3 client shared by worker threads."""

    backend = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        credentials: CredentialSource,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
        object_lock_days: int = 400,
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not bucket:
            raise ValueError("object_store.bucket must be set for the s3 backend")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.prefix = f"{check_key(prefix.strip('/'))}/" if prefix.strip("/") else ""
        self.object_lock_days = object_lock_days
        self._credentials = credentials
        self._timeouts = (connect_timeout, read_timeout)
        self._clock = clock
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_version: str | None = None
        self._lock_enabled: bool | None = None
        self._lock_detail = ""
        self._conditional_writes = True

    # --- the interface -------------------------------------------------------------

    async def put(
        self, key: str, data: bytes, *, write_once: bool = False, retain: bool = False
    ) -> ObjectInfo:
        name = self._name(key)
        await self._call("put", self._put, name, data, write_once or retain, retain)
        return ObjectInfo(key, len(data))

    async def get(self, key: str) -> bytes:
        name = self._name(key)

        def get() -> bytes:
            body = self._s3().get_object(Bucket=self.bucket, Key=name)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        return await self._call("get", get, missing=key)

    async def exists(self, key: str) -> bool:
        name = self._name(key)
        try:
            await self._call("head", self._head, name, missing=key)
        except ObjectNotFound:
            return False
        return True

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        full = self.prefix + check_prefix(prefix)

        def list_all() -> list[ObjectInfo]:
            paginator = self._s3().get_paginator("list_objects_v2")
            found: list[ObjectInfo] = []
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    found.append(ObjectInfo(item["Key"][len(self.prefix) :], int(item["Size"])))
            return sorted(found, key=lambda info: info.key)

        return await self._call("list", list_all)

    async def delete(self, key: str) -> None:
        name = self._name(key)

        def delete() -> None:
            head = self._head(name)
            if head.get("Metadata", {}).get(WRITE_ONCE_META) == "true" or head.get(
                "ObjectLockMode"
            ):
                raise ObjectLocked(f"object {key!r} is write-once and cannot be deleted")
            self._s3().delete_object(Bucket=self.bucket, Key=name)

        await self._call("delete", delete, missing=key)

    async def protection(self) -> Protection:
        def probe() -> Protection:
            self._check_bucket()
            locked = self._lock_configuration()
            if locked:
                return Protection(
                    "object-lock",
                    True,
                    f"bucket {self.bucket}: S3 Object Lock, COMPLIANCE mode, "
                    f"{self.object_lock_days} day{'s' if self.object_lock_days != 1 else ''}",
                )
            how = "If-None-Match" if self._conditional_writes else "a head check (racy)"
            return Protection(
                "if-none-match" if self._conditional_writes else "head-check",
                False,
                f"bucket {self.bucket}: CANNOT LOCK ({self._lock_detail}); write-once by "
                f"{how} only, the bucket's owner can still delete objects",
            )

        return await self._call("probe", probe)

    # --- blocking parts, run in a worker thread -------------------------------------------

    def _put(self, name: str, data: bytes, write_once: bool, retain: bool) -> None:
        locked = self._lock_configuration()  # also checks the bucket exists (see below)
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": name, "Body": data}
        if write_once:
            args["Metadata"] = {WRITE_ONCE_META: "true"}
            if retain and locked:
                args["ObjectLockMode"] = "COMPLIANCE"
                args["ObjectLockRetainUntilDate"] = self._clock() + timedelta(
                    days=self.object_lock_days
                )
            if not self._conditional_writes:
                self._refuse_existing(name)
                self._s3().put_object(**args)
                return
            args["IfNoneMatch"] = "*"
        else:
            self._refuse_write_once(name)
        try:
            self._s3().put_object(**args)
        except _client_error() as exc:
            if _code(exc) != "NotImplemented" or "IfNoneMatch" not in args:
                raise
            # The service has no conditional writes: fall back to look-then-write.
            self._conditional_writes = False
            del args["IfNoneMatch"]
            self._refuse_existing(name)
            self._s3().put_object(**args)

    def _refuse_existing(self, name: str) -> None:
        try:
            self._head(name)
        except _client_error() as exc:
            if _code(exc) in _MISSING_CODES:
                return
            raise
        raise ObjectExists(f"object {name[len(self.prefix) :]!r} exists and is write-once")

    def _refuse_write_once(self, name: str) -> None:
        """A plain put must not replace a write-once object (a HEAD first: plain puts are
        rare, whole-object writes)."""
        try:
            head = self._head(name)
        except _client_error() as exc:
            if _code(exc) in _MISSING_CODES:
                return
            raise
        if head.get("Metadata", {}).get(WRITE_ONCE_META) == "true" or head.get("ObjectLockMode"):
            raise ObjectExists(f"object {name[len(self.prefix) :]!r} exists and is write-once")

    def _head(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._s3().head_object(Bucket=self.bucket, Key=name)
        return result

    def _check_bucket(self) -> None:
        """HeadBucket answers a bare 404 for a missing bucket; name it clearly.

        Checked before the first write too, because some services (SeaweedFS) create a
        missing bucket on the first PUT instead of refusing it.
        """
        try:
            self._s3().head_bucket(Bucket=self.bucket)
        except _client_error() as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise ObjectStoreUnavailable(
                    f"s3 object store: bucket {self.bucket!r} does not exist at {self._where()}",
                    "no_bucket",
                ) from None
            if _code(exc) == "403":
                # A HEAD reply has no body, so no error code: ask again with a GET that
                # names it (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied).
                self._s3().list_objects_v2(Bucket=self.bucket, MaxKeys=1)
                return
            raise

    def _lock_configuration(self) -> bool:
        """Whether the bucket has Object Lock; asked once per process (it cannot be
        switched off once on), after checking that the bucket exists."""
        if self._lock_enabled is not None:
            return self._lock_enabled
        self._check_bucket()
        try:
            reply = self._s3().get_object_lock_configuration(Bucket=self.bucket)
        except _client_error() as exc:
            code = _code(exc)
            if code in _CREDENTIAL_CODES:
                raise
            self._lock_detail = (
                "Object Lock is not enabled on the bucket"
                if code == "ObjectLockConfigurationNotFoundError"
                else f"cannot read its Object Lock configuration: {code}"
            )
            self._lock_enabled = False
            return False
        config = reply.get("ObjectLockConfiguration", {})
        enabled = bool(config.get("ObjectLockEnabled") == "Enabled")
        self._lock_detail = "" if enabled else "Object Lock is not enabled on the bucket"
        self._lock_enabled = enabled
        return enabled

    def _s3(self) -> Any:
        """The client for the current credentials (rebuilt after a rotation)."""
        credentials = self._credentials()
        version = credentials.version if credentials is not None else "default-chain"
        with self._lock:
            if self._client is None or version != self._client_version:
                self._client = self._new_client(credentials)
                self._client_version = version
            return self._client

    def _new_client(self, credentials: S3Credentials | None) -> Any:
        import boto3
        from botocore.config import Config

        connect, read = self._timeouts
        keys: dict[str, str] = {}
        if credentials is not None:
            keys = {
                "aws_access_key_id": credentials.access_key,
                "aws_secret_access_key": credentials.secret_key,
            }
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=Config(
                connect_timeout=connect,
                read_timeout=read,
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"} if self.endpoint_url else {},
            ),
            **keys,
        )

    # --- helpers ------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _where(self) -> str:
        """The endpoint without any user info or path, for messages."""
        if not self.endpoint_url:
            return f"AWS S3 ({self.region})"
        parts = urlsplit(self.endpoint_url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    async def _call(
        self, action: str, function: Callable[..., T], *args: Any, missing: str | None = None
    ) -> T:
        """Run ``function`` in a thread; translate boto errors into domain errors."""
        try:
            return await asyncio.to_thread(function, *args)
        except ObjectStoreError:
            raise
        except Exception as exc:
            raise self._translate(exc, action, missing) from None

    def _translate(self, exc: Exception, action: str, missing: str | None) -> Exception:
        from botocore import exceptions as boto

        where = self._where()
        if isinstance(exc, SecretError):  # its message names the secret, never a value
            return ObjectStoreUnavailable(f"s3 object store credentials: {exc}", "credentials")
        if isinstance(exc, boto.ClientError):
            code = _code(exc)
            if code in _CREDENTIAL_CODES:
                return ObjectStoreUnavailable(
                    f"s3 object store: {where} refused the credentials ({code}); check the "
                    "access_key_secret and secret_key_secret secrets",
                    "credentials",
                )
            if code in _DENIED_CODES:
                return ObjectStoreUnavailable(
                    f"s3 object store: access denied for {action} on bucket {self.bucket!r} "
                    f"at {where} ({code}); wrong credentials or missing permission",
                    "access_denied",
                )
            if code == "NoSuchBucket":
                return ObjectStoreUnavailable(
                    f"s3 object store: bucket {self.bucket!r} does not exist at {where}",
                    "no_bucket",
                )
            if code in _MISSING_CODES and missing is not None:
                return ObjectNotFound(f"no object {missing!r} in bucket {self.bucket!r}")
            if code in _PRECONDITION_CODES:
                return ObjectExists(f"object exists in bucket {self.bucket!r} and is write-once")
            return ObjectStoreUnavailable(
                f"s3 object store: {action} failed at {where} ({code or 'error'})", "error"
            )
        if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
            return ObjectStoreUnavailable(
                "s3 object store: no credentials (set object_store.access_key_secret and "
                "secret_key_secret, or give the host a role)",
                "credentials",
            )
        if isinstance(
            exc,
            boto.EndpointConnectionError
            | boto.ConnectTimeoutError
            | boto.ReadTimeoutError
            | boto.ConnectionClosedError,
        ):
            return ObjectStoreUnavailable(
                f"s3 object store: endpoint {where} unreachable ({type(exc).__name__})",
                "unreachable",
            )
        if isinstance(exc, boto.BotoCoreError):
            return ObjectStoreUnavailable(
                f"s3 object store: {action} failed at {where} ({type(exc).__name__})", "error"
            )
        return exc


def _client_error() -> type[Exception]:
    from botocore.exceptions import ClientError

    error: type[Exception] = ClientError
    return error


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
