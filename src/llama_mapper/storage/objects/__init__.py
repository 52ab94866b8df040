"""Object store: whole objects by key, a local folder by default, S3 in production.

Callers depend on :class:`ObjectStore` and :func:`object_store_from_settings` only, so the
backend is a setting (``object_store.backend``). The key layout (``anchors/``,
``exports/``, later ``reports/`` and ``models/``) is documented in docs/object-store.md.
"""

from __future__ import annotations

from llama_mapper.config.settings import Settings
from llama_mapper.secrets import SecretProvider
from llama_mapper.storage.objects._base import (
    InvalidObjectKey,
    ObjectExists,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    Protection,
    check_key,
)
from llama_mapper.storage.objects.local import LocalObjectStore
from llama_mapper.storage.objects.s3 import S3Credentials, S3ObjectStore

__all__ = [
    "OBJECTS_DIRNAME",
    "InvalidObjectKey",
    "LocalObjectStore",
    "ObjectExists",
    "ObjectInfo",
    "ObjectLocked",
    "ObjectNotFound",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreUnavailable",
    "Protection",
    "S3Credentials",
    "S3ObjectStore",
    "check_key",
    "object_store_from_settings",
]

#: Folder under ``state_dir`` of the local backend when ``object_store.directory`` is unset.
OBJECTS_DIRNAME = "objects"


def object_store_from_settings(settings: Settings, secrets: SecretProvider) -> ObjectStore:
    """The store ``settings.object_store`` describes; opens no connection.

    S3 credentials are read from ``secrets`` on each call (the provider caches them), so a
    rotated key is picked up without a restart and never sits in the configuration.
    """
    config = settings.object_store
    if config.backend == "local":
        return LocalObjectStore(config.directory or settings.state_dir / OBJECTS_DIRNAME)
    access_name, secret_name = config.access_key_secret, config.secret_key_secret
    if (access_name is None) != (secret_name is None):
        raise ValueError(
            "object_store.access_key_secret and secret_key_secret are set together "
            "(or both null for the default credential chain)"
        )

    def credentials() -> S3Credentials | None:
        if access_name is None or secret_name is None:
            return None
        access, secret = secrets.get(access_name), secrets.get(secret_name)
        return S3Credentials(access.value, secret.value, f"{access.version}.{secret.version}")

    return S3ObjectStore(
        bucket=config.bucket or "",
        credentials=credentials,
        endpoint_url=config.endpoint_url,
        region=config.region,
        prefix=config.prefix,
        object_lock_days=config.object_lock_days,
    )
