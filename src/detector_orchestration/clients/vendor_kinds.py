"""Registry kinds for the vendor clients: ``(record, context) -> Detector`` factories.

They have the shape of ``registry.factory.KINDS`` entries, so enabling them there is
``KINDS.update(VENDOR_KINDS)``. A record names its credential by ``auth_secret`` (a secret
name, resolved through the SecretProvider on every call); kind-specific options come from
``record.settings``:

- ``openai-moderation``: ``model`` (default ``omni-moderation-latest``), ``organization``;
  ``endpoint`` defaults to ``https://api.openai.com``.
- ``azure-content-safety``: ``endpoint`` (the resource URL, required), ``blocklist_names``,
  ``halt_on_blocklist_hit``, ``output_type``.
- ``bedrock-guardrails``: ``guardrail_id``, ``guardrail_version``, ``region`` (required),
  ``secret_access_key_secret`` (required; ``auth_secret`` is the access key id's secret),
  ``session_token_secret``, ``source``, ``output_scope``; ``endpoint`` optional.
- ``lakera-guard``: ``project_id``; ``endpoint`` defaults to ``https://api.lakera.ai``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detector_orchestration.clients._vendor import SecretRef
from detector_orchestration.clients.azure_content_safety import AzureContentSafetyDetector
from detector_orchestration.clients.bedrock_guardrails import BedrockGuardrailsDetector
from detector_orchestration.clients.lakera_guard import (
    DEFAULT_BASE_URL as LAKERA_URL,
)
from detector_orchestration.clients.lakera_guard import (
    LakeraGuardDetector,
)
from detector_orchestration.clients.openai_moderation import (
    DEFAULT_BASE_URL as OPENAI_URL,
)
from detector_orchestration.clients.openai_moderation import (
    DEFAULT_MODEL,
    OpenAIModerationDetector,
)
from detector_orchestration.detectors.base import Detector


class VendorConfigError(ValueError):
    """A vendor record that lacks what its API needs (names the field, never a value)."""


# ``record`` is a registry DetectorRecord and ``context`` a FactoryContext (``http``,
# ``secrets``); they are typed loosely to keep clients/ free of an import cycle.
VendorFactory = Callable[[Any, Any], Detector]


def _secret(record: Any, context: Any, name: str | None, field: str) -> SecretRef:
    if not name:
        raise VendorConfigError(f"detector {record.name!r} needs {field}")
    if context.secrets is None:
        raise VendorConfigError(f"detector {record.name!r} needs a secrets provider")
    return SecretRef(context.secrets, str(name))


def _setting(record: Any, key: str) -> str:
    value = record.settings.get(key)
    if not value:
        raise VendorConfigError(f"detector {record.name!r} needs settings.{key}")
    return str(value)


def openai_moderation(record: Any, context: Any) -> Detector:
    return OpenAIModerationDetector(
        _secret(record, context, record.auth_secret, "auth_secret"),
        name=record.name,
        base_url=record.endpoint or OPENAI_URL,
        model=str(record.settings.get("model", DEFAULT_MODEL)),
        organization=record.settings.get("organization"),
        client=context.http,
    )


def azure_content_safety(record: Any, context: Any) -> Detector:
    if not record.endpoint:
        raise VendorConfigError(f"detector {record.name!r} needs an endpoint")
    return AzureContentSafetyDetector(
        record.endpoint,
        _secret(record, context, record.auth_secret, "auth_secret"),
        name=record.name,
        blocklist_names=tuple(record.settings.get("blocklist_names") or ()),
        halt_on_blocklist_hit=bool(record.settings.get("halt_on_blocklist_hit", False)),
        output_type=str(record.settings.get("output_type", "FourSeverityLevels")),
        client=context.http,
    )


def bedrock_guardrails(record: Any, context: Any) -> Detector:
    token = record.settings.get("session_token_secret")
    return BedrockGuardrailsDetector(
        _setting(record, "guardrail_id"),
        _setting(record, "guardrail_version"),
        _setting(record, "region"),
        _secret(record, context, record.auth_secret, "auth_secret"),
        _secret(
            record,
            context,
            record.settings.get("secret_access_key_secret"),
            "settings.secret_access_key_secret",
        ),
        session_token=_secret(record, context, token, "settings.session_token_secret")
        if token
        else None,
        name=record.name,
        source=str(record.settings.get("source", "INPUT")),
        output_scope=str(record.settings.get("output_scope", "INTERVENTIONS")),
        endpoint=record.endpoint,
        client=context.http,
    )


def lakera_guard(record: Any, context: Any) -> Detector:
    return LakeraGuardDetector(
        _secret(record, context, record.auth_secret, "auth_secret"),
        name=record.name,
        base_url=record.endpoint or LAKERA_URL,
        project_id=record.settings.get("project_id"),
        client=context.http,
    )


VENDOR_KINDS: dict[str, VendorFactory] = {
    "openai-moderation": openai_moderation,
    "azure-content-safety": azure_content_safety,
    "bedrock-guardrails": bedrock_guardrails,
    "lakera-guard": lakera_guard,
}
