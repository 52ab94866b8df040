"""Signed anchors: chain heads recorded outside the database, so truncation is caught.

The hash chain shows that no stored event was changed, but not that the newest events were
not cut off together with the ``audit_heads`` row (see :mod:`llama_mapper.audit.chain`).
An *anchor* is a small signed statement "tenant T's chain had event ``seq`` with hash
``head_hash``", written once to a place the database cannot rewrite. As long as the anchor
survives, deleting or rewriting anything up to its seq is caught by
:func:`check_against_chain`.

Signing key. Ed25519, derived deterministically from the secret ``audit_anchor_key``
(``sha256(value)`` is the 32-byte private key), so any :class:`SecretProvider` backend can
hold it as a plain string, rotate it and generate it on an embedded install. Each anchor
embeds its public key and the secret version that signed it, so rotation never invalidates
old anchors; an auditor compares the public keys against ones published out of band.

Storage. :class:`AnchorStore` writes one JSON object per anchor under
``anchors/<tenant>/`` of the object store (:mod:`llama_mapper.storage.objects`), write-once
so nothing is overwritten: by default read-only files under ``<state_dir>/objects`` (safe
against someone who can rewrite the database but not the host), in production an S3 bucket
with Object Lock in COMPLIANCE mode (safe against the bucket's owner too, for
``object_store.object_lock_days``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from llama_mapper.audit.store import CorruptEventError, EventStore
from llama_mapper.config.settings import Settings
from llama_mapper.secrets import Secret, SecretProvider
from llama_mapper.storage.db.schema import audit_heads
from llama_mapper.storage.db.tenancy import ALL_TENANTS, connect_as
from llama_mapper.storage.objects import ObjectExists, ObjectStore, object_store_from_settings

#: The secret the signing key is derived from; the runtime may generate it (embedded).
ANCHOR_SECRET = "audit_anchor_key"  # noqa: S105 - a secret name, not a value
#: Key prefix of the anchors in the object store (docs/object-store.md).
ANCHOR_PREFIX = "anchors"

#: Tenant ids become folder names: no separators, no leading dot (same rule as the API).
_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")
_FILE = re.compile(r"(\d{12})-[0-9a-f]{16}\.json")
_FIELDS = (
    "tenant_id",
    "seq",
    "head_hash",
    "anchored_at",
    "key_version",
    "public_key",
    "signature",
)


class AnchorError(ValueError):
    """An anchor could not be made or read; a ``ValueError`` so the CLI reports one line."""


@dataclass(frozen=True)
class Anchor:
    """A signed statement that ``tenant_id``'s event ``seq`` had hash ``head_hash``."""

    tenant_id: str
    seq: int
    head_hash: str
    #: ISO-8601 UTC, when the anchor was signed (not when the event happened).
    anchored_at: str
    #: Version of the anchor secret that signed it, so a rotated key can be traced.
    key_version: str
    #: Hex of the raw 32-byte Ed25519 public key; embedded so old anchors outlive rotation.
    public_key: str
    #: Hex of the 64-byte Ed25519 signature over :meth:`message`.
    signature: str

    def message(self) -> bytes:
        """The signed bytes: sorted-key compact JSON of every field but the signature.

        The public key is inside the message so it cannot be swapped for another key
        without also forging the signature under that other key's owner.
        """
        return signed_message(
            self.tenant_id,
            self.seq,
            self.head_hash,
            self.anchored_at,
            self.key_version,
            self.public_key,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Anchor:
        """Parse a stored anchor; :class:`AnchorError` for missing or mistyped fields."""
        if not isinstance(data, Mapping) or set(data) != set(_FIELDS):
            raise AnchorError(f"an anchor has exactly the fields {', '.join(_FIELDS)}")
        seq = data["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise AnchorError("anchor seq must be an integer")
        for name in _FIELDS:
            if name != "seq" and not isinstance(data[name], str):
                raise AnchorError(f"anchor field {name} must be a string")
        return cls(**{name: data[name] for name in _FIELDS})


def signed_message(
    tenant_id: str,
    seq: int,
    head_hash: str,
    anchored_at: str,
    key_version: str,
    public_key: str,
) -> bytes:
    """Canonical JSON (orjson, sorted keys) so any verifier can rebuild the exact bytes."""
    return orjson.dumps(
        {
            "anchored_at": anchored_at,
            "head_hash": head_hash,
            "key_version": key_version,
            "public_key": public_key,
            "seq": seq,
            "tenant_id": tenant_id,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def check_tenant_id(tenant_id: str) -> str:
    """``tenant_id`` if it is safe as a folder name; :class:`AnchorError` otherwise."""
    if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
        raise AnchorError(f"invalid tenant id for an anchor: {str(tenant_id)[:70]!r}")
    return tenant_id


def signing_key(secret: Secret) -> Ed25519PrivateKey:
    """The Ed25519 key of one secret version; deterministic, so every host derives it."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(secret.value.encode()).digest())


def public_key_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def sign_anchor(
    tenant_id: str,
    seq: int,
    head_hash: str,
    secret: Secret,
    *,
    anchored_at: str | None = None,
) -> Anchor:
    """Sign "``tenant_id``'s event ``seq`` has hash ``head_hash``" with ``secret``'s key."""
    check_tenant_id(tenant_id)
    if seq < 1 or not _HEX64.fullmatch(head_hash):
        raise AnchorError("an anchor needs seq >= 1 and a 64-hex-digit head hash")
    key = signing_key(secret)
    public = public_key_hex(key)
    when = anchored_at or utc_now()
    message = signed_message(tenant_id, seq, head_hash, when, secret.version, public)
    return Anchor(
        tenant_id=tenant_id,
        seq=seq,
        head_hash=head_hash,
        anchored_at=when,
        key_version=secret.version,
        public_key=public,
        signature=key.sign(message).hex(),
    )


def verify_anchor(anchor: Anchor) -> bool:
    """Whether the signature is valid for the embedded public key (never raises).

    This proves the anchor was not altered since signing, not *who* signed it: compare
    ``public_key`` with a published key for that.
    """
    try:
        if anchor.seq < 1 or not _TENANT_ID.fullmatch(anchor.tenant_id):
            return False
        if not _HEX64.fullmatch(anchor.head_hash) or not _HEX64.fullmatch(anchor.public_key):
            return False
        if not _HEX128.fullmatch(anchor.signature):
            return False
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(anchor.public_key))
        public.verify(bytes.fromhex(anchor.signature), anchor.message())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


async def check_against_chain(anchor: Anchor, store: EventStore) -> tuple[bool, str]:
    """Whether the stored chain still holds the anchored event: ``(ok, reason)``.

    The chain from seq 1 up to ``anchor.seq`` must verify and its event ``anchor.seq`` must
    have ``anchor.head_hash``, so deleting, changing or rewriting any event the anchor
    covers (the head row included) is caught. The signature is checked first.
    """
    if not verify_anchor(anchor):
        return False, f"anchor at seq {anchor.seq} has an invalid signature"
    return await _check_prefix(store, anchor.tenant_id, {anchor.seq: anchor.head_hash})


async def _check_prefix(
    store: EventStore, tenant_id: str, expected: Mapping[int, str]
) -> tuple[bool, str]:
    """Verify the chain from seq 1 up to the highest seq in ``expected``, whose events
    must have the expected hashes; one pass however many anchors are checked."""
    try:
        # From seq 1, or from right after the newest retention tombstone.
        verifier = await store.chain_verifier(tenant_id)
    except CorruptEventError as exc:
        return False, f"unreadable event at seq {exc.seq}: {exc.reason}"
    start = verifier.expected_seq or 1
    if start - 1 in expected and expected[start - 1] != verifier.expected_prev:
        return False, f"event seq {start - 1} was deleted with a hash other than anchored"
    # Anchored events that retention deleted can no longer be compared (a tombstone
    # records only the last deleted hash, checked just above).
    expected = {seq: want for seq, want in expected.items() if seq >= start}
    if not expected:
        return True, f"anchored events were deleted by retention (chain starts at seq {start})"
    last_seq = max(expected)
    try:
        async for stored in store.iter_events(tenant_id):
            if stored.seq > last_seq:
                break
            if not verifier.feed(stored):
                result = verifier.result()
                return False, f"chain broken at seq {result.first_broken_seq}: {result.reason}"
            want = expected.get(stored.seq)
            if want is not None and stored.hash != want:
                return False, f"event seq {stored.seq} no longer has the anchored hash"
    except CorruptEventError as exc:
        return False, f"unreadable event at seq {exc.seq}: {exc.reason}"
    reached = verifier.last.seq if verifier.last is not None else start - 1
    if reached < last_seq:
        return False, f"the chain ends at seq {reached}, before anchored seq {last_seq}"
    return True, "ok"


class AnchorStore:
    """Anchors as write-once objects: ``anchors/<tenant>/<seq:012d>-<hash[:16]>.json``.

    The zero-padded seq makes key order seq order, so :meth:`latest` reads one object.
    Every anchor is put with ``retain=True``: under S3 Object Lock (COMPLIANCE) where the
    bucket has it, write-once (``O_EXCL``, mode 0444) in the local folder.
    """

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @classmethod
    def for_settings(cls, settings: Settings, secrets: SecretProvider) -> AnchorStore:
        return cls(object_store_from_settings(settings, secrets))

    def key(self, anchor: Anchor) -> str:
        tenant = check_tenant_id(anchor.tenant_id)
        return f"{ANCHOR_PREFIX}/{tenant}/{anchor.seq:012d}-{anchor.head_hash[:16]}.json"

    async def write(self, anchor: Anchor) -> str:
        """Store the anchor once and return its key; :class:`ObjectExists` (a
        ``FileExistsError``) if that seq and head are anchored already.

        The store's atomic write-once (``O_EXCL``, ``If-None-Match``) rather than a
        check-then-write, so two concurrent writers cannot both succeed.
        """
        data = orjson.dumps(anchor.to_dict(), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
        await self.objects.put(self.key(anchor), data + b"\n", write_once=True, retain=True)
        return self.key(anchor)

    async def _keys(self, tenant_id: str) -> list[str]:
        prefix = f"{ANCHOR_PREFIX}/{check_tenant_id(tenant_id)}/"
        return [
            info.key
            for info in await self.objects.list(prefix)
            if _FILE.fullmatch(info.key[len(prefix) :])
        ]

    async def _read(self, tenant_id: str, key: str) -> Anchor:
        try:
            anchor = Anchor.from_dict(orjson.loads(await self.objects.get(key)))
        except orjson.JSONDecodeError as exc:
            raise AnchorError(f"anchor {key} is not valid JSON: {exc}") from None
        except AnchorError as exc:
            raise AnchorError(f"anchor {key}: {exc}") from None
        match = _FILE.fullmatch(key.rpartition("/")[2])
        # An object copied from another tenant or renamed must not pass as this one's anchor.
        if anchor.tenant_id != tenant_id or match is None or int(match[1]) != anchor.seq:
            raise AnchorError(f"anchor {key} does not match its tenant or seq")
        return anchor

    async def all(self, tenant_id: str) -> list[Anchor]:
        """The tenant's anchors in seq order."""
        return [await self._read(tenant_id, key) for key in await self._keys(tenant_id)]

    async def latest(self, tenant_id: str) -> Anchor | None:
        """The anchor with the highest seq, or ``None`` before the first anchor."""
        keys = await self._keys(tenant_id)
        return await self._read(tenant_id, keys[-1]) if keys else None


async def list_tenants(store: EventStore) -> list[str]:
    """Tenants with at least one event, from ``audit_heads`` (one row per tenant)."""
    query = (
        select(audit_heads.c.tenant_id)
        .where(audit_heads.c.seq > 0)
        .distinct()
        .order_by(audit_heads.c.tenant_id)
    )
    # Spans tenants on purpose: the documented row-level-security bypass.
    async with connect_as(store.engine, ALL_TENANTS) as connection:
        return [str(row) for row in (await connection.execute(query)).scalars()]


async def anchor_tenants(
    store: EventStore,
    anchors: AnchorStore,
    secrets: SecretProvider,
    tenants: list[str],
) -> list[Anchor]:
    """Anchor each tenant's current head; returns the anchors written.

    Tenants without events, or whose head is already anchored, are skipped. Before signing,
    the chain up to the head (and up to the previous anchor) is verified, because an anchor
    must never bless a chain that was already tampered with: such a tenant raises
    :class:`AnchorError` and nothing is written for any tenant.
    """
    secret = secrets.get(ANCHOR_SECRET)
    planned: list[Anchor] = []
    problems: list[str] = []
    for tenant in tenants:
        check_tenant_id(tenant)
        head = await store.head(tenant)
        if head is None:
            continue
        previous = await anchors.latest(tenant)
        if previous is not None and (previous.seq, previous.head_hash) == head:
            continue
        expected = {head[0]: head[1]}
        if previous is not None:
            if not verify_anchor(previous):
                problems.append(f"{tenant}: latest anchor has an invalid signature")
                continue
            if previous.seq in expected and expected[previous.seq] != previous.head_hash:
                problems.append(f"{tenant}: head seq {head[0]} differs from its anchor")
                continue
            expected[previous.seq] = previous.head_hash
        ok, reason = await _check_prefix(store, tenant, expected)
        if not ok:
            problems.append(f"{tenant}: {reason}")
            continue
        planned.append(sign_anchor(tenant, head[0], head[1], secret))
    if problems:
        raise AnchorError("refusing to anchor: " + "; ".join(problems))
    written = []
    for anchor in planned:
        try:
            await anchors.write(anchor)
        except ObjectExists:
            continue  # another worker or replica anchored this very head: nothing to do
        written.append(anchor)
    return written
