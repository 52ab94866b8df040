"""Turning registry records (and built-ins) into Detector instances.

``KINDS`` maps a record's ``kind`` to a factory: ``fms`` and ``http-json`` are here, the
vendor clients' come from :mod:`detector_orchestration.clients.vendor_kinds`. Built-in
detectors come from ``detector_orchestration.detectors.builtin.builtin_detectors()``
(name -> factory) when that module is present; the import is guarded so this package
works without it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from detector_orchestration.clients.fms import FmsDetector
from detector_orchestration.clients.http_base import AuthHeader
from detector_orchestration.clients.http_json import HttpJsonDetector
from detector_orchestration.clients.vendor_kinds import VENDOR_KINDS
from detector_orchestration.detectors.base import Detector
from detector_orchestration.registry.model import DetectorRecord
from llama_mapper.secrets import SecretProvider


class FactoryError(ValueError):
    """A record that cannot become a detector (unknown kind, missing endpoint...)."""


@dataclass(frozen=True)
class FactoryContext:
    http: httpx.AsyncClient
    secrets: SecretProvider | None


DetectorFactory = Callable[[DetectorRecord, FactoryContext], Detector]


def _auth(record: DetectorRecord, context: FactoryContext) -> AuthHeader | None:
    if not record.auth_secret:
        return None
    settings = record.settings
    return AuthHeader(
        context.secrets,
        record.auth_secret,
        header=str(settings.get("auth_header", "Authorization")),
        scheme=str(settings.get("auth_scheme", "Bearer")),
    )


def _endpoint(record: DetectorRecord) -> str:
    if not record.endpoint:
        raise FactoryError(f"detector {record.name!r} of kind {record.kind} needs an endpoint")
    return record.endpoint


def fms_factory(record: DetectorRecord, context: FactoryContext) -> Detector:
    settings = record.settings
    return FmsDetector(
        name=record.name,
        base_url=_endpoint(record),
        detector_id=str(settings.get("detector_id", record.name)),
        http=context.http,
        pack=record.pack,
        version=record.version,
        content_types=record.content_types,
        detector_params=settings.get("detector_params") or {},
        auth=_auth(record, context),
    )


def http_json_factory(record: DetectorRecord, context: FactoryContext) -> Detector:
    settings = record.settings
    return HttpJsonDetector(
        name=record.name,
        url=_endpoint(record),
        pack=record.pack,
        http=context.http,
        version=record.version,
        content_types=record.content_types,
        request_template=settings.get("request_template"),
        response_path=str(settings.get("response_path", "")),
        spans_path=settings.get("spans_path"),
        span_fields=settings.get("span_fields"),
        drop_keys=settings.get("drop_keys") or (),
        auth=_auth(record, context),
    )


KINDS: dict[str, DetectorFactory] = {
    "fms": fms_factory,
    "http-json": http_json_factory,
    **VENDOR_KINDS,  # openai-moderation, azure-content-safety, bedrock-guardrails, lakera-guard
}


def builtin_factories(
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Mapping[str, Callable[[], Detector]]:
    """Built-in detectors by name, or none when the built-ins are not installed.

    ``options`` gives a built-in its keyword options (``{"presidio": {"model": None}}``).
    """
    try:
        module = importlib.import_module("detector_orchestration.detectors.builtin")
    except ImportError:
        return {}
    factories: dict[str, Callable[..., Detector]] = dict(module.builtin_detectors())
    for name, kwargs in (options or {}).items():
        if name in factories and kwargs:
            factories[name] = functools.partial(factories[name], **kwargs)
    return factories


def build(
    record: DetectorRecord, context: FactoryContext, kinds: Mapping[str, Any] = KINDS
) -> Detector:
    factory = kinds.get(record.kind)
    if factory is None:
        raise FactoryError(f"detector {record.name!r} has unknown kind {record.kind!r}")
    detector: Detector = factory(record, context)
    return detector
