"""The embedded object store: one file per object under a folder (``<state_dir>/objects``).

Write-once objects are written to a hidden temporary file and hard-linked into place,
which fails if the name exists (two concurrent writers cannot both succeed, nothing is
overwritten, and no reader sees half an object), with mode 0444; :meth:`LocalObjectStore.delete`
refuses a file without its write bit. This protects against someone who can rewrite the
database but not the host: root on the host can still change the files, so production
uses the S3 backend with Object Lock.

Plain objects are written to a hidden temporary file and renamed into place, so a reader
never sees half an object. File I/O (with ``fsync``) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
from pathlib import Path

from llama_mapper.storage.objects._base import (
    ObjectExists,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    ObjectStoreUnavailable,
    Protection,
    check_key,
    check_prefix,
)

WRITE_ONCE_MODE = 0o444
PLAIN_MODE = 0o644


class LocalObjectStore:
    """Objects as files: key ``a/b/c.json`` is the file ``<root>/a/b/c.json``."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """Where ``key`` lives; keys are checked, so the path never leaves ``root``."""
        return self.root.joinpath(*check_key(key).split("/"))

    async def put(
        self, key: str, data: bytes, *, write_once: bool = False, retain: bool = False
    ) -> ObjectInfo:
        path = self.path(key)
        once = write_once or retain
        await asyncio.to_thread(_write_once if once else _replace, path, data, key)
        return ObjectInfo(key, len(data))

    async def get(self, key: str) -> bytes:
        path = self.path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r} in the local store") from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        return await asyncio.to_thread(_walk, self.root, check_prefix(prefix))

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)

    def _delete(self, key: str) -> None:
        path = self.path(key)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key!r} in the local store") from None
        if not mode & stat.S_IWUSR:
            raise ObjectLocked(f"object {key!r} is write-once and cannot be deleted")
        path.unlink()

    async def protection(self) -> Protection:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise PermissionError

        try:
            await asyncio.to_thread(probe)
        except OSError:
            raise ObjectStoreUnavailable(
                f"local object store: folder {self.root} is not writable", "unwritable"
            ) from None
        return Protection(
            mechanism="o_excl",
            locked=False,
            detail="write-once files, mode 0444; the host's root can still change them",
        )


def _walk(root: Path, prefix: str) -> list[ObjectInfo]:
    """Objects under ``root`` whose key starts with ``prefix``, in key order."""
    # Walk only the folder the prefix names (or its parent for a partial segment).
    folder_key, _, _ = prefix.rpartition("/")
    start = root.joinpath(*folder_key.split("/")) if folder_key else root
    found: list[ObjectInfo] = []
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath).relative_to(root).as_posix()
        for name in filenames:
            if name.startswith("."):
                continue  # temporary files of an unfinished put
            key = name if base == "." else f"{base}/{name}"
            if key.startswith(prefix):
                found.append(ObjectInfo(key, (Path(dirpath) / name).stat().st_size))
    return sorted(found, key=lambda info: info.key)


def _staged(path: Path, data: bytes, mode: int) -> str:
    """``data`` in a hidden temporary file beside ``path``, on disk, with ``mode``: what
    both puts move into place, so no reader ever sees half an object."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return temp


def _write_once(path: Path, data: bytes, key: str) -> None:
    """Stage the object, then ``link`` it into place: the link fails if the name exists
    (of two concurrent writers one fails, as with ``O_EXCL``), and a reader never sees
    the object before all of it is on disk (``O_EXCL`` on the final name let a reader see
    an empty file between the create and the write)."""
    temp = _staged(path, data, WRITE_ONCE_MODE)
    try:
        os.link(temp, path)
    except FileExistsError:
        raise ObjectExists(f"object {key!r} exists and is write-once") from None
    finally:
        Path(temp).unlink(missing_ok=True)


def _replace(path: Path, data: bytes, key: str) -> None:
    if path.exists() and not path.stat().st_mode & stat.S_IWUSR:
        raise ObjectExists(f"object {key!r} exists and is write-once")
    temp = _staged(path, data, PLAIN_MODE)
    try:
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
