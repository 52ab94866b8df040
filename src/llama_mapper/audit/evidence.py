"""Turn an answered mapping into its MappingEvent: what was decided, never what was seen.

The raw detector output is represented only by a keyed fingerprint (HMAC-SHA256 under the
privacy key from the SecretProvider): equal outputs can be matched across events by whoever
holds the key, while the event itself reveals nothing about the content.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from llama_mapper.audit.events import MappingEvent
from llama_mapper.secrets import SecretProvider


class Fingerprinter:
    def __init__(self, secrets: SecretProvider, secret_name: str) -> None:
        self._secrets = secrets
        self._name = secret_name

    def __call__(self, output: object) -> tuple[str, str]:
        """(hex HMAC of the output's canonical JSON, version of the key that made it)."""
        key = self._secrets.get(self._name)  # cached by the provider; rotation picks up
        data = orjson.dumps(output, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        digest = hmac.new(key.value.encode(), data, hashlib.sha256).hexdigest()
        return digest, key.version


#: Seals a tenant's kept metadata fields for one event id: ``(sealed fields, wrapped data
#: key)``, or ``None`` when nothing is kept.
Sealed = Callable[[str], tuple[dict[str, Any], tuple[str, str]] | None]


def new_event_id() -> str:
    return uuid.uuid4().hex


def event_from_response(
    response: Mapping[str, Any],
    fingerprint: tuple[str, str],
    sealed: Sealed | None = None,
    *,
    event_id: str | None = None,
) -> MappingEvent:
    """The event of one answered mapping.

    ``sealed(event_id)`` returns the event's kept metadata, encrypted for that event id,
    and its wrapped data key (see :class:`~llama_mapper.crypto.MetadataSealer`), or
    ``None`` when the tenant keeps none: by default no metadata is stored at all.
    """
    provenance = response["provenance"]
    frameworks: Mapping[str, list[str]] = response["frameworks"]
    event_id = event_id or new_event_id()
    kept = sealed(event_id) if sealed is not None else None
    return MappingEvent(
        event_id=event_id,
        tenant_id=provenance["tenant_id"],
        request_id=provenance["request_id"],
        ts=provenance["ts"],
        route=provenance["route"],
        detector=provenance["detector"],
        detector_version=provenance["detector_version"],
        labels=tuple(response["taxonomy"]),
        scores=dict(response["scores"]),
        confidence=response["confidence"],
        methods=dict(provenance["method"]),
        versions=dict(response["version_info"]),
        controls=tuple(sorted({ref for refs in frameworks.values() for ref in refs})),
        output_fingerprint=fingerprint[0],
        fingerprint_version=fingerprint[1],
        metadata=kept[0] if kept else None,
        metadata_key=kept[1] if kept else None,
    )
