"""Model folders to register and stores to register them in, for the registry tests.

The models are copies of the shipped adapter folder (1.5 MB) with another version (and,
where a test needs to tell them apart, other metrics) in their card: real artifacts that
the card reader and, in one test, torch accept. Nothing here imports torch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.objects.support import admin_client, s3_store

from llama_mapper.model.artifact import CARD, DEFAULT_MODEL_DIR, read_json, write_json
from llama_mapper.storage.objects import LocalObjectStore, ObjectStore, S3ObjectStore


def model_folder(root: Path, version: str, *, top1: float | None = None) -> Path:
    """A copy of the shipped model whose card says ``version`` (and ``top1`` if given)."""
    folder = root / version
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    card = read_json(folder / CARD)
    card["version"] = version
    if top1 is not None:
        card["metrics"]["overall"]["top1_accuracy"] = top1
    write_json(folder / CARD, card)
    return folder


def tamper(store: ObjectStore, key: str, data: bytes) -> None:
    """Replace a stored object behind the store's back, as someone with host or bucket
    rights could (the local file's write-once mode is undone, the S3 object overwritten
    with a raw client that sends no If-None-Match)."""
    if isinstance(store, LocalObjectStore):
        path = store.path(key)
        path.chmod(0o644)
        path.write_bytes(data)
        return
    assert isinstance(store, S3ObjectStore)
    assert store.endpoint_url is not None
    client = admin_client(store.endpoint_url)
    client.put_object(Bucket=store.bucket, Key=store.prefix + key, Body=data)


def make_store(kind: str, tmp_path: Path) -> ObjectStore:
    """``local``: a folder; ``s3``: the plain SeaweedFS bucket (so tests can tamper);
    ``s3-locked``: the Object Lock bucket. Fresh prefix each (skips without SeaweedFS)."""
    if kind == "local":
        return LocalObjectStore(tmp_path / "objects")
    return s3_store(locked=kind == "s3-locked")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return make_store(str(request.param), tmp_path)
