"""The model registry: versioned model folders in the object store, and who serves per stage.

Why in the object store: serving replicas, the CLI and auditors all reach it, it is
write-once (a registered version can never change under the version name that evidence
events record), and it already runs in every deployment (a local folder by default, S3
in production). Torch-free: only model cards and bytes are handled here.

Key layout (see docs/learned-tier.md, "Model registry"):

``models/<version>/files/<path>``
    every file of the model folder, write-once.
``models/<version>/manifest.json``
    size and SHA-256 of each file plus a summary of the card, written *last*: a version
    is registered exactly when its manifest exists, so an interrupted upload is invisible
    and is finished by registering the same folder again.
``models/_promotions/<stage>/<seq:012d>.json``
    the promotion history of a stage, one write-once record per promote or rollback. A
    write-once store has no mutable "current" pointer, so the record with the highest
    sequence number wins; two concurrent writers of the same number cannot both succeed
    (the loser re-reads the history and tries the next number).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from llama_mapper.model.artifact import CARD, ArtifactError, ModelCard, read_card
from llama_mapper.storage.objects import InvalidObjectKey, ObjectExists, ObjectStore, check_key

MODELS = "models"
PROMOTIONS = f"{MODELS}/_promotions"
MANIFEST = "manifest.json"
MANIFEST_SCHEMA = "model-manifest/1"
PROMOTION_SCHEMA = "model-promotion/1"
DEFAULT_STAGE = "production"
#: A version is one key segment that cannot collide with ``_promotions``.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=-]{0,99}")
STAGE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,31}")
#: Attempts at appending a promotion record when other writers keep taking the next number.
_APPEND_ATTEMPTS = 8


class RegistryError(ValueError):
    """A refused registry operation (unknown version, bad folder, nothing to roll back,
    a version registered with other bytes); the message is one line for the CLI."""


class TamperedArtifact(RegistryError):
    """A stored file no longer matches the SHA-256 its manifest recorded."""


def check_version(version: str) -> str:
    if not VERSION_PATTERN.fullmatch(version):
        raise RegistryError(
            f"invalid model version {version[:100]!r}: 1 to 100 letters, digits, '.', '_', "
            "'=' or '-', starting with a letter or digit"
        )
    return version


def check_stage(stage: str) -> str:
    if not STAGE_PATTERN.fullmatch(stage):
        raise RegistryError(
            f"invalid stage {stage[:40]!r}: lower-case letters, digits and '-', e.g. production"
        )
    return stage


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileEntry:
    """One file of a registered model: its path inside the folder, size and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What ``models/<version>/manifest.json`` holds: the files and the card's summary.

    The summary (kind, base model, data hash, key metrics, date) is what ``mapper model
    list`` shows, so listing reads one small object per version, not every card.
    """

    version: str
    kind: str
    base_model: str
    data_hash: str
    taxonomy_version: str
    date: str | None
    top1_accuracy: float | None
    ece: float | None
    files: tuple[FileEntry, ...]
    registered_at: str

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise RegistryError(f"model {self.version} has no file {path!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": MANIFEST_SCHEMA,
            "version": self.version,
            "kind": self.kind,
            "base_model": self.base_model,
            "data_hash": self.data_hash,
            "taxonomy_version": self.taxonomy_version,
            "date": self.date,
            "metrics": {"top1_accuracy": self.top1_accuracy, "ece": self.ece},
            "files": [{"path": e.path, "size": e.size, "sha256": e.sha256} for e in self.files],
            "registered_at": self.registered_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        try:
            if data["schema"] != MANIFEST_SCHEMA:
                raise ValueError(data["schema"])
            metrics = data["metrics"]
            return cls(
                version=str(data["version"]),
                kind=str(data["kind"]),
                base_model=str(data["base_model"]),
                data_hash=str(data["data_hash"]),
                taxonomy_version=str(data["taxonomy_version"]),
                date=_optional_str(data["date"]),
                top1_accuracy=_optional_float(metrics["top1_accuracy"]),
                ece=_optional_float(metrics["ece"]),
                # Checked like keys: a path in the manifest never leaves the cache folder.
                files=tuple(
                    FileEntry(check_key(str(e["path"])), int(e["size"]), str(e["sha256"]))
                    for e in data["files"]
                ),
                registered_at=str(data["registered_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:  # InvalidObjectKey is a ValueError
            raise RegistryError(f"model manifest is not valid ({type(exc).__name__})") from None


@dataclass(frozen=True)
class Promotion:
    """One record of a stage's history: after it, ``version`` serves on ``stage``."""

    stage: str
    seq: int
    action: str  # "promote" or "rollback"
    version: str
    #: The version that served on the stage before this record.
    previous: str | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PROMOTION_SCHEMA,
            "stage": self.stage,
            "seq": self.seq,
            "action": self.action,
            "version": self.version,
            "previous": self.previous,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Promotion:
        try:
            if data["schema"] != PROMOTION_SCHEMA or data["action"] not in ("promote", "rollback"):
                raise ValueError(data["schema"])
            return cls(
                stage=str(data["stage"]),
                seq=int(data["seq"]),
                action=str(data["action"]),
                version=str(data["version"]),
                previous=_optional_str(data["previous"]),
                at=str(data["at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(f"promotion record is not valid ({type(exc).__name__})") from None


@dataclass(frozen=True)
class RegisteredModel:
    """A version as ``mapper model list`` shows it: its manifest and the stages it serves."""

    manifest: Manifest
    stages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Registration:
    manifest: Manifest
    #: False when the same bytes were registered already (registering is idempotent).
    created: bool


@dataclass(frozen=True)
class StageChange:
    record: Promotion
    #: False when the stage already served that version (nothing was appended).
    changed: bool


@dataclass
class _Upload:
    """The folder being registered: its files' bytes, read once."""

    card: ModelCard
    blobs: dict[str, bytes] = field(default_factory=dict)


def serving_stack(history: list[Promotion]) -> list[str]:
    """Replay a stage's history: a promote pushes its version, a rollback pops the top.

    The top is what serves; the entry below it is what a rollback returns to, so a second
    rollback goes back one more promotion rather than undoing the first rollback.
    """
    stack: list[str] = []
    for record in history:
        if record.action == "rollback" and stack:
            stack.pop()
        else:
            stack.append(record.version)
    return stack


class ModelRegistry:
    """Register, list, promote and roll back model versions in an :class:`ObjectStore`."""

    def __init__(
        self, store: ObjectStore, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.store = store
        self._clock = clock

    # --- versions -------------------------------------------------------------------

    async def register(self, folder: Path) -> Registration:
        """Upload ``folder`` as its card's version; idempotent for the same bytes.

        Registered versions are write-once: the same version with other bytes is refused
        (train with a new ``--version`` instead), and so is a version whose upload was
        interrupted with other bytes.
        """
        upload = _read_folder(folder)
        version = upload.card.version
        manifest = _manifest(upload, self._now())
        existing = await self._manifest_or_none(version)
        if existing is not None:
            return Registration(_same_or_refuse(existing, manifest), created=False)
        for path, data in upload.blobs.items():
            await self._put_once(_file_key(version, path), data, version, path)
        body = orjson.dumps(manifest.to_dict(), option=orjson.OPT_INDENT_2) + b"\n"
        try:
            await self.store.put(_manifest_key(version), body, write_once=True)
        except ObjectExists:  # registered concurrently: fine if it is the same model
            raced = await self.manifest(version)
            return Registration(_same_or_refuse(raced, manifest), created=False)
        return Registration(manifest, created=True)

    async def manifest(self, version: str) -> Manifest:
        found = await self._manifest_or_none(check_version(version))
        if found is None:
            known = sorted(m.version for m in await self._manifests())
            listed = ", ".join(known[-10:]) if known else "none yet; use mapper model register"
            raise RegistryError(f"unknown model version {version!r} (registered: {listed})")
        return found

    async def read_file(self, version: str, path: str, manifest: Manifest | None = None) -> bytes:
        """One file of a registered version, checked against its manifest's SHA-256."""
        entry = (manifest or await self.manifest(version)).file(path)
        data = await self.store.get(_file_key(version, path))
        if len(data) != entry.size or sha256(data) != entry.sha256:
            raise TamperedArtifact(
                f"file {path} of model {version} does not match the SHA-256 in its manifest "
                "(changed or corrupt in the object store); refusing to use it"
            )
        return data

    async def card(self, version: str) -> dict[str, Any]:
        """The full ``model_card.json`` of a version (verified)."""
        data = orjson.loads(await self.read_file(version, CARD))
        if not isinstance(data, dict):
            raise TamperedArtifact(f"model card of {version} is not a JSON object")
        return data

    # --- stages ---------------------------------------------------------------------

    async def history(self, stage: str) -> list[Promotion]:
        """The stage's records in order (the key order is the sequence order)."""
        prefix = f"{PROMOTIONS}/{check_stage(stage)}/"
        records = []
        for info in await self.store.list(prefix):
            record = Promotion.from_dict(_json(await self.store.get(info.key)))
            records.append(record)
        return records

    async def current(self, stage: str) -> str | None:
        """The version serving on ``stage`` (the latest record's), or ``None``."""
        history = await self.history(stage)
        return history[-1].version if history else None

    async def current_all(self) -> dict[str, str]:
        """Stage -> serving version, reading only the last record of each stage."""
        last: dict[str, str] = {}
        for info in await self.store.list(f"{PROMOTIONS}/"):
            parts = info.key.split("/")
            if len(parts) == 4:
                last[parts[2]] = info.key  # key order: the last one per stage wins
        current = {}
        for stage, key in sorted(last.items()):
            current[stage] = Promotion.from_dict(_json(await self.store.get(key))).version
        return current

    async def promote(self, version: str, stage: str = DEFAULT_STAGE) -> StageChange:
        """Make ``version`` (registered) the one serving on ``stage``."""
        await self.manifest(version)
        check_stage(stage)

        def decide(history: list[Promotion]) -> tuple[str, str] | None:
            if history and history[-1].version == version:
                return None
            return "promote", version

        return await self._append(stage, decide)

    async def rollback(self, stage: str = DEFAULT_STAGE) -> StageChange:
        """Serve again what served before the latest promotion still in effect."""
        check_stage(stage)

        def decide(history: list[Promotion]) -> tuple[str, str] | None:
            stack = serving_stack(history)
            if len(stack) < 2:
                why = (
                    "nothing was promoted there yet"
                    if not stack
                    else f"{stack[-1]} is the only version promoted there"
                )
                raise RegistryError(f"nothing to roll back to on stage {stage!r}: {why}")
            return "rollback", stack[-2]

        return await self._append(stage, decide)

    # --- internals ------------------------------------------------------------------

    async def _append(
        self, stage: str, decide: Callable[[list[Promotion]], tuple[str, str] | None]
    ) -> StageChange:
        for _ in range(_APPEND_ATTEMPTS):
            history = await self.history(stage)
            choice = decide(history)
            if choice is None:
                return StageChange(history[-1], changed=False)
            action, version = choice
            seq = history[-1].seq + 1 if history else 1
            record = Promotion(
                stage=stage,
                seq=seq,
                action=action,
                version=version,
                previous=history[-1].version if history else None,
                at=self._now(),
            )
            key = f"{PROMOTIONS}/{stage}/{seq:012d}.json"
            try:
                await self.store.put(key, orjson.dumps(record.to_dict()) + b"\n", write_once=True)
            except ObjectExists:
                continue  # another writer took this number: decide again on the new history
            return StageChange(record, changed=True)
        raise RegistryError(f"stage {stage!r} keeps changing under concurrent writers; try again")

    async def _manifests(self) -> list[Manifest]:
        found = []
        for info in await self.store.list(f"{MODELS}/"):
            parts = info.key.split("/")
            if len(parts) == 3 and parts[2] == MANIFEST and not parts[1].startswith("_"):
                found.append(Manifest.from_dict(_json(await self.store.get(info.key))))
        return found

    async def _manifest_or_none(self, version: str) -> Manifest | None:
        key = _manifest_key(version)
        if not await self.store.exists(key):
            return None
        manifest = Manifest.from_dict(_json(await self.store.get(key)))
        if manifest.version != version:
            raise TamperedArtifact(f"the manifest of model {version} names {manifest.version}")
        return manifest

    async def _put_once(self, key: str, data: bytes, version: str, path: str) -> None:
        try:
            await self.store.put(key, data, write_once=True)
        except ObjectExists:
            # Left by an interrupted registration: only the very same bytes may stay.
            if sha256(await self.store.get(key)) != sha256(data):
                raise RegistryError(
                    f"file {path} of model {version} is already stored with other bytes "
                    "(an interrupted registration of a different model); registered versions "
                    "are write-once: give this model a new version"
                ) from None

    def _now(self) -> str:
        return self._clock().isoformat(timespec="seconds").replace("+00:00", "Z")

    # Last in the class: below it, ``list`` would name this method in annotations.
    async def list(self) -> list[RegisteredModel]:
        """Every registered version, oldest registration first, with its stages."""
        serving: dict[str, list[str]] = {}
        for stage, version in (await self.current_all()).items():
            serving.setdefault(version, []).append(stage)
        manifests = sorted(await self._manifests(), key=lambda m: (m.registered_at, m.version))
        return [RegisteredModel(m, tuple(sorted(serving.get(m.version, [])))) for m in manifests]


def _read_folder(folder: Path) -> _Upload:
    """Validate ``folder`` (artifact.py's checks) and read every file to upload.

    Hidden files (``.DS_Store``, editor swap files) are left out; any other file goes up,
    whatever the model's kind needs, so a new kind brings its files without a change here.
    """
    try:
        card = read_card(folder)
    except ArtifactError as exc:
        raise RegistryError(f"not a model folder: {exc}") from None
    check_version(card.version)
    upload = _Upload(card)
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            relative = full.relative_to(folder).as_posix()
            try:
                check_key(relative)
            except InvalidObjectKey:
                raise RegistryError(
                    f"model folder {folder}: file name {relative[:80]!r} cannot be stored "
                    "(letters, digits, '_', '.', '=', '-' only)"
                ) from None
            upload.blobs[relative] = full.read_bytes()
    return upload


def _manifest(upload: _Upload, now: str) -> Manifest:
    card = upload.card
    overall = card.metrics.get("overall")
    metrics = overall if isinstance(overall, dict) else card.metrics
    return Manifest(
        version=card.version,
        kind=card.kind,
        base_model=card.base_model,
        data_hash=card.data_hash,
        taxonomy_version=card.taxonomy_version,
        date=_optional_str(card.raw.get("date")),
        top1_accuracy=_optional_float(metrics.get("top1_accuracy")),
        ece=_optional_float(metrics.get("ece")),
        files=tuple(
            FileEntry(path, len(data), sha256(data)) for path, data in upload.blobs.items()
        ),
        registered_at=now,
    )


def _same_or_refuse(existing: Manifest, new: Manifest) -> Manifest:
    if sorted(existing.files, key=lambda e: e.path) == sorted(new.files, key=lambda e: e.path):
        return existing
    old = {e.path: e.sha256 for e in existing.files}
    now = {e.path: e.sha256 for e in new.files}
    differ = sorted(p for p in old.keys() | now.keys() if old.get(p) != now.get(p))
    raise RegistryError(
        f"model version {new.version} is already registered with other files "
        f"({', '.join(differ[:5])} differ); registered versions are write-once: give this "
        "model a new version (mapper train --version ...)"
    )


def _file_key(version: str, path: str) -> str:
    return f"{MODELS}/{version}/files/{path}"


def _manifest_key(version: str) -> str:
    return f"{MODELS}/{version}/{MANIFEST}"


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise RegistryError("a registry record is not valid JSON") from None


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
