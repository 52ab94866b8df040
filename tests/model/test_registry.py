"""The model registry against the real stores: the local write-once folder and SeaweedFS S3."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from llama_mapper.model.artifact import CARD, DEFAULT_MODEL_DIR, HEAD, read_json, write_json
from llama_mapper.model.registry import (
    ModelRegistry,
    Promotion,
    RegistryError,
    TamperedArtifact,
    serving_stack,
)
from llama_mapper.model.registry_cache import ModelCache, folder_matches
from llama_mapper.storage.objects import ObjectStore

from .registry_support import make_store, model_folder, store, tamper

__all__ = ["store"]  # the parametrized fixture (local, s3)

T = TypeVar("T")
SHIPPED = read_json(DEFAULT_MODEL_DIR / CARD)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def keys(store: ObjectStore, prefix: str = "models/") -> list[str]:
    return [info.key for info in await store.list(prefix)]


def test_register_uploads_every_file_and_a_manifest(store: ObjectStore, tmp_path: Path) -> None:
    folder = model_folder(tmp_path, "embedding-7.0.0")
    (folder / "extra").mkdir()
    (folder / "extra" / "notes.txt").write_text("kind-specific files go up too\n")
    (folder / ".DS_Store").write_bytes(b"\0")  # hidden files do not
    registry = ModelRegistry(store, clock=lambda: datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    result = run(registry.register(folder))
    assert result.created
    manifest = result.manifest
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    files.remove(".DS_Store")
    assert sorted(e.path for e in manifest.files) == files
    for entry in manifest.files:
        data = (folder / entry.path).read_bytes()
        assert (entry.size, entry.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert run(store.get(f"models/embedding-7.0.0/files/{entry.path}")) == data
    stored = orjson.loads(run(store.get("models/embedding-7.0.0/manifest.json")))
    assert stored["registered_at"] == "2026-12-01T09:30:00Z"
    assert stored["kind"] == "embedding"
    assert stored["data_hash"] == SHIPPED["data_hash"]
    assert stored["base_model"] == SHIPPED["base_model"]
    assert stored["metrics"] == {
        "top1_accuracy": SHIPPED["metrics"]["overall"]["top1_accuracy"],
        "ece": SHIPPED["metrics"]["overall"]["ece"],
    }
    assert run(keys(store)) == sorted(
        [f"models/embedding-7.0.0/files/{f}" for f in files]
        + ["models/embedding-7.0.0/manifest.json"]
    )
    (listed,) = run(registry.list())
    assert listed.manifest == manifest
    assert listed.stages == ()
    assert listed.manifest.date == SHIPPED["date"]


def test_registering_again_is_idempotent_and_other_bytes_are_refused(
    store: ObjectStore, tmp_path: Path
) -> None:
    folder = model_folder(tmp_path, "embedding-7.0.1")
    registry = ModelRegistry(store)
    first = run(registry.register(folder))
    before = run(keys(store))
    again = run(registry.register(model_folder(tmp_path / "copy", "embedding-7.0.1")))
    assert not again.created
    assert again.manifest == first.manifest  # the first registration's record, date included
    assert run(keys(store)) == before
    card = read_json(folder / CARD)
    card["metrics"]["overall"]["ece"] = 0.5  # same version, other bytes
    write_json(folder / CARD, card)
    with pytest.raises(RegistryError, match=r"already registered with other files \(model_card"):
        run(registry.register(folder))
    assert run(keys(store)) == before
    assert (
        run(registry.card("embedding-7.0.1"))["metrics"]["overall"]["ece"]
        == SHIPPED["metrics"]["overall"]["ece"]
    )


def test_an_interrupted_registration_is_finished_only_with_the_same_bytes(
    store: ObjectStore, tmp_path: Path
) -> None:
    folder = model_folder(tmp_path, "embedding-7.0.2")
    # What a registration killed after its first upload leaves: a file, no manifest.
    run(store.put("models/embedding-7.0.2/files/head.safetensors", b"other", write_once=True))
    registry = ModelRegistry(store)
    with pytest.raises(RegistryError, match=r"head.safetensors of model embedding-7.0.2 is"):
        run(registry.register(folder))
    with pytest.raises(RegistryError, match=r"unknown model version 'embedding-7.0.2'"):
        run(registry.manifest("embedding-7.0.2"))  # still not registered
    other = model_folder(tmp_path / "b", "embedding-7.0.3")
    head = (other / HEAD).read_bytes()
    run(store.put("models/embedding-7.0.3/files/head.safetensors", head, write_once=True))
    assert run(registry.register(other)).created


def test_bad_folders_are_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(make_store("local", tmp_path))
    with pytest.raises(RegistryError, match=r"not a model folder: model folder .* not found"):
        run(registry.register(tmp_path / "nothing"))
    folder = model_folder(tmp_path, "embedding-7.1.0")
    (folder / HEAD).unlink()
    with pytest.raises(RegistryError, match=r"not a model folder: .* lacks head.safetensors"):
        run(registry.register(folder))
    for version in ("_promotions", "a b", ""):
        bad = model_folder(tmp_path / f"v{len(version)}", "x")
        card = read_json(bad / CARD)
        card["version"] = version
        write_json(bad / CARD, card)
        with pytest.raises(RegistryError, match=r"invalid model version"):
            run(registry.register(bad))
    odd = model_folder(tmp_path, "embedding-7.1.1")
    (odd / "has space.txt").write_text("x")
    with pytest.raises(RegistryError, match=r"file name 'has space.txt' cannot be stored"):
        run(registry.register(odd))
    assert run(registry.list()) == []


def test_promote_rollback_and_history(store: ObjectStore, tmp_path: Path) -> None:
    registry = ModelRegistry(store)
    for n in (1, 2, 3):
        run(registry.register(model_folder(tmp_path, f"embedding-8.0.{n}", top1=0.7 + n / 100)))
    with pytest.raises(RegistryError, match=r"nothing to roll back to on stage 'production'"):
        run(registry.rollback())
    assert run(registry.current("production")) is None
    for n in (1, 2, 3):
        change = run(registry.promote(f"embedding-8.0.{n}"))
        assert change.changed
        assert change.record.seq == n
    assert not run(registry.promote("embedding-8.0.3")).changed  # already serving
    run(registry.promote("embedding-8.0.1", "staging"))
    assert run(registry.current_all()) == {
        "production": "embedding-8.0.3",
        "staging": "embedding-8.0.1",
    }
    stages = {m.manifest.version: m.stages for m in run(registry.list())}
    assert stages == {
        "embedding-8.0.1": ("staging",),
        "embedding-8.0.2": (),
        "embedding-8.0.3": ("production",),
    }
    back = run(registry.rollback())
    assert (back.record.action, back.record.version, back.record.previous) == (
        "rollback",
        "embedding-8.0.2",
        "embedding-8.0.3",
    )
    assert run(registry.rollback()).record.version == "embedding-8.0.1"  # one more step back
    with pytest.raises(RegistryError, match=r"embedding-8.0.1 is the only version promoted there"):
        run(registry.rollback())
    history = run(registry.history("production"))
    assert [(r.seq, r.action, r.version) for r in history] == [
        (1, "promote", "embedding-8.0.1"),
        (2, "promote", "embedding-8.0.2"),
        (3, "promote", "embedding-8.0.3"),
        (4, "rollback", "embedding-8.0.2"),
        (5, "rollback", "embedding-8.0.1"),
    ]
    # Append-only: every record is still there, write-once, under its sequence number.
    assert run(keys(store, "models/_promotions/production/")) == [
        f"models/_promotions/production/{n:012d}.json" for n in range(1, 6)
    ]
    assert run(registry.current("staging")) == "embedding-8.0.1"


def test_unknown_versions_and_bad_stages_are_refused(store: ObjectStore, tmp_path: Path) -> None:
    registry = ModelRegistry(store)
    with pytest.raises(RegistryError, match=r"unknown model version 'nope' \(registered: none yet"):
        run(registry.promote("nope"))
    run(registry.register(model_folder(tmp_path, "embedding-8.1.0")))
    with pytest.raises(RegistryError, match=r"\(registered: embedding-8.1.0\)"):
        run(registry.card("nope"))
    with pytest.raises(RegistryError, match=r"invalid stage 'Prod/1'"):
        run(registry.promote("embedding-8.1.0", "Prod/1"))
    with pytest.raises(RegistryError, match=r"invalid model version '../x'"):
        run(registry.manifest("../x"))
    assert run(registry.current_all()) == {}


def test_concurrent_promotions_all_land_in_order(store: ObjectStore, tmp_path: Path) -> None:
    """Writers racing for the next sequence number: write-once lets one win each number,
    the others re-read the history and take the next; no record is lost or overwritten."""
    registry = ModelRegistry(store)
    versions = [f"embedding-9.0.{n}" for n in range(5)]
    for version in versions:
        run(registry.register(model_folder(tmp_path, version)))

    async def race() -> list[Promotion]:
        changes = await asyncio.gather(*(registry.promote(v) for v in versions))
        return [c.record for c in changes]

    records = run(race())
    assert sorted(r.seq for r in records) == [1, 2, 3, 4, 5]
    history = run(registry.history("production"))
    assert sorted(r.version for r in history) == sorted(versions)
    assert [r.previous for r in history[1:]] == [r.version for r in history[:-1]]


def test_a_changed_file_is_refused_on_read(store: ObjectStore, tmp_path: Path) -> None:
    registry = ModelRegistry(store)
    run(registry.register(model_folder(tmp_path, "embedding-9.1.0")))
    tamper(store, "models/embedding-9.1.0/files/model_card.json", b'{"version": "evil"}')
    with pytest.raises(TamperedArtifact, match=r"model_card.json of model embedding-9.1.0 does"):
        run(registry.card("embedding-9.1.0"))
    key = "models/embedding-9.1.0/manifest.json"
    manifest = orjson.loads(run(store.get(key)))
    manifest["files"][0]["path"] = "../../outside"  # would leave the cache folder
    tamper(store, key, orjson.dumps(manifest))
    with pytest.raises(RegistryError, match=r"model manifest is not valid"):
        run(registry.manifest("embedding-9.1.0"))
    manifest["files"][0]["path"], manifest["version"] = "MODEL_CARD.md", "embedding-9.9.9"
    tamper(store, key, orjson.dumps(manifest))
    with pytest.raises(TamperedArtifact, match=r"manifest of model embedding-9.1.0 names embed"):
        run(registry.manifest("embedding-9.1.0"))


def test_registry_works_on_an_object_lock_bucket(tmp_path: Path) -> None:
    registry = ModelRegistry(make_store("s3-locked", tmp_path))
    assert run(registry.register(model_folder(tmp_path, "embedding-9.2.0"))).created
    assert not run(registry.register(model_folder(tmp_path / "b", "embedding-9.2.0"))).created
    run(registry.promote("embedding-9.2.0"))
    assert run(registry.current("production")) == "embedding-9.2.0"


def test_serving_stack_replays_promotions_and_rollbacks() -> None:
    def record(action: str, version: str) -> Promotion:
        return Promotion("production", 0, action, version, None, "")

    history = [
        record("promote", "a"),
        record("promote", "b"),
        record("promote", "a"),
        record("rollback", "b"),
        record("promote", "c"),
    ]
    assert serving_stack(history) == ["a", "b", "c"]
    assert serving_stack(history[:4]) == ["a", "b"]
    assert serving_stack([]) == []


def test_concurrent_fetches_share_one_verified_folder(store: ObjectStore, tmp_path: Path) -> None:
    """Server workers starting together: each downloads into its own temporary folder and
    renames it into place; every one ends with the same verified folder, no temp left."""
    registry = ModelRegistry(store)
    run(registry.register(model_folder(tmp_path / "m", "embedding-9.3.0")))
    cache = ModelCache(tmp_path / "cache")

    async def fetch_all() -> list[Path]:
        return list(
            await asyncio.gather(*(cache.fetch(registry, "embedding-9.3.0") for _ in range(4)))
        )

    folders = run(fetch_all())
    assert folders == [tmp_path / "cache" / "embedding-9.3.0"] * 4
    assert folder_matches(folders[0], run(registry.manifest("embedding-9.3.0")))
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["embedding-9.3.0"]
