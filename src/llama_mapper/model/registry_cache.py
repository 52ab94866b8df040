"""A registered model, fetched into ``<state_dir>/models/<version>/`` and verified before use.

Serving loads models from a local folder (torch reads files), so a registered version is
downloaded once per host. Every file is checked against the manifest's SHA-256 on every
use, the cached copy included: a file changed in the object store is refused (the mapper
then runs rules-only and says why), a file changed in the cache is fetched again.

Several server workers may start at once on one host: each downloads into its own hidden
temporary folder and renames it into place, and whoever loses the race uses the winner's
folder once it verifies.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from llama_mapper.model.artifact import ArtifactError, read_card
from llama_mapper.model.registry import Manifest, ModelRegistry, TamperedArtifact, sha256

#: Folder under ``state_dir`` holding fetched model versions.
CACHE_DIRNAME = "models"
T = TypeVar("T")


def folder_matches(folder: Path, manifest: Manifest) -> bool:
    """Whether ``folder`` holds exactly the manifest's files, byte for byte."""
    if not folder.is_dir():
        return False
    present = set()
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts):
            present.add(relative.as_posix())
    if present != {entry.path for entry in manifest.files}:
        return False
    for entry in manifest.files:
        data = (folder / entry.path).read_bytes()
        if len(data) != entry.size or sha256(data) != entry.sha256:
            return False
    return True


class ModelCache:
    """Registered versions as local folders under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def fetch(self, registry: ModelRegistry, version: str) -> Path:
        """The verified local folder of ``version``, downloaded when missing or changed."""
        manifest = await registry.manifest(version)
        folder = self.root / version
        if await asyncio.to_thread(folder_matches, folder, manifest):
            return folder
        self.root.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".fetch-{version}-"))
        try:
            for entry in manifest.files:
                data = await registry.read_file(version, entry.path, manifest)
                target = temp / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(target.write_bytes, data)
            _check_card(temp, version)
            await asyncio.to_thread(_install, temp, folder, manifest)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        return folder


def _check_card(folder: Path, version: str) -> None:
    """The card must name the version it is registered under (its bytes are verified, so a
    mismatch means a manifest written for another model)."""
    try:
        card = read_card(folder)
    except ArtifactError as exc:
        raise TamperedArtifact(f"registered model {version} is not a model folder: {exc}") from None
    if card.version != version:
        raise TamperedArtifact(
            f"registered model {version} carries the card of {card.version}; refusing to use it"
        )


def _install(temp: Path, folder: Path, manifest: Manifest) -> None:
    """Move the verified download into place; a stale or changed copy is replaced."""
    if folder.exists():
        if folder_matches(folder, manifest):
            return  # another worker installed it meanwhile
        stale = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".stale-{folder.name}-"))
        os.replace(folder, stale / folder.name)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        os.replace(temp, folder)
    except OSError:
        # Lost a race with another worker's rename: theirs must verify too.
        if not folder_matches(folder, manifest):
            raise


def run_blocking(work: Callable[[], Awaitable[T]]) -> T:
    """Run async ``work`` to completion from synchronous code, inside an event loop or not.

    The service is built synchronously, sometimes while a loop runs (an app factory called
    from async code); ``asyncio.run`` cannot nest, so there it runs on a helper thread.
    """

    async def main() -> T:
        return await work()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-fetch") as pool:
        return pool.submit(asyncio.run, main()).result()
