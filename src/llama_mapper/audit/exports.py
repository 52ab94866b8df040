"""Exports of a tenant's chain and their manifests: what makes a windowed export checkable.

An export line is ``{"seq", "prev_hash", "hash", "event"}`` (see ``docs/audit-verification.md``).
The manifest next to it names the window, its starting ``prev_hash`` and the signed anchors
inside it; exports and manifests go into the object store under ``exports/<tenant>/``
(docs/object-store.md), write-once but without a retention lock, because retention may
have to delete them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from llama_mapper.audit.anchors import Anchor, AnchorStore, check_tenant_id, utc_now
from llama_mapper.audit.store import EventStore
from llama_mapper.storage.objects import ObjectStore

#: Key prefix of exports in the object store.
EXPORT_PREFIX = "exports"


@dataclass(frozen=True)
class ExportManifest:
    """What an auditor needs to trust the first line of a windowed export.

    The chain check proves every event after the first; the first ``prev_hash`` links to an
    event outside the file. It is checkable when an anchor inside the window exists: the
    recomputed hash of event ``anchor.seq`` must equal the signed ``head_hash``, and that
    hash depends on the starting ``prev_hash`` through every event before it. Otherwise
    the manifest states it as the starting point, taken on trust (or compared with an
    earlier export's last hash).
    """

    tenant_id: str
    window_from: str | None
    window_to: str | None
    exported_at: str
    events: int
    first_seq: int | None
    starting_prev_hash: str | None
    last_seq: int | None
    last_hash: str | None
    anchors: tuple[Anchor, ...]

    @property
    def starting_point(self) -> str:
        if self.first_seq is None:
            return "empty"
        if self.first_seq == 1:
            return "genesis"
        return "anchored" if self.anchors else "stated"

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "tenant_id": self.tenant_id,
                "from": self.window_from,
                "to": self.window_to,
                "exported_at": self.exported_at,
                "events": self.events,
                "first_seq": self.first_seq,
                "starting_prev_hash": self.starting_prev_hash,
                "starting_point": self.starting_point,
                "last_seq": self.last_seq,
                "last_hash": self.last_hash,
                "anchors": [anchor.to_dict() for anchor in self.anchors],
            },
            option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE,
        )

    def summary(self) -> str:
        point = self.starting_point
        if point in ("empty", "genesis"):
            return f"starting point: {point}"
        start = f"seq {self.first_seq} links to prev_hash {str(self.starting_prev_hash)[:16]}"
        if point == "anchored":
            seqs = ", ".join(str(anchor.seq) for anchor in self.anchors)
            return f"starting point: {start}, checkable against the anchor(s) at seq {seqs}"
        return f"starting point: {start}, stated (no anchor inside the window)"


async def build_manifest(
    store: EventStore, anchors: AnchorStore, tenant: str, start: str | None, end: str | None
) -> ExportManifest:
    """Re-read the window's first and last event (cheap) and the anchors inside it."""
    first = last = None
    count = 0
    async for stored in store.iter_events(tenant, since=start, until=end):
        first = first or stored
        last = stored
        count += 1
    inside: tuple[Anchor, ...] = ()
    if first is not None and last is not None:
        inside = tuple(
            anchor for anchor in await anchors.all(tenant) if first.seq <= anchor.seq <= last.seq
        )
    return ExportManifest(
        tenant_id=tenant,
        window_from=start,
        window_to=end,
        exported_at=utc_now(),
        events=count,
        first_seq=first.seq if first else None,
        starting_prev_hash=first.prev_hash if first else None,
        last_seq=last.seq if last else None,
        last_hash=last.hash if last else None,
        anchors=inside,
    )


def manifest_path(output: Path) -> Path:
    """Where ``-o FILE`` puts the manifest: ``FILE.manifest.json``."""
    return output.with_name(output.name + ".manifest.json")


async def store_export(objects: ObjectStore, manifest: ExportManifest, data: bytes) -> str:
    """``exports/<tenant>/<UTC time>-<first seq>-<last seq>.jsonl`` plus its manifest,
    both write-once (no retention lock: retention may have to delete them later)."""
    tenant = check_tenant_id(manifest.tenant_id)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{EXPORT_PREFIX}/{tenant}/{stamp}-{manifest.first_seq:012d}-{manifest.last_seq:012d}"
    await objects.put(f"{name}.jsonl", data, write_once=True)
    await objects.put(f"{name}.manifest.json", manifest.to_json(), write_once=True)
    return f"{name}.jsonl"
