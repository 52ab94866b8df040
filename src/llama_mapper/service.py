"""The mapping use case shared by the HTTP API and the CLI.

It validates one payload, applies the tenant's overlay, guards against raw content,
runs the engine and shapes the ``MappingResponse``. No HTTP here, so ``mapper map`` and
``mapper batch`` answer exactly what ``POST /map`` answers.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from llama_mapper.adapters.base import OutputShapeError
from llama_mapper.adapters.registry import AdapterRegistry, default_registry
from llama_mapper.adapters.scales import SCORE_RULES_VERSION
from llama_mapper.catalog import Catalog, load_catalog
from llama_mapper.config.overlays import OverlayError, TenantConfigs, apply_environment
from llama_mapper.config.settings import Settings, TenantSettings
from llama_mapper.errors import (
    ConfigurationError,
    InvalidOutput,
    InvalidRequest,
    RawContentRejected,
    RetiredRequestShape,
    TenantMismatch,
    describe_validation_errors,
)
from llama_mapper.mapping.engine import MappingEngine, MappingResult
from llama_mapper.mapping.learned import LearnedThresholds, LearnedTier
from llama_mapper.mapping.thresholds import ThresholdOverrides
from llama_mapper.model.serving import RULES_ONLY, serving_tier
from llama_mapper.observability.tracing import span
from llama_mapper.privacy.guard import GuardLimits, RawContentError, check_raw_content
from llama_mapper.schemas import DetectorRequest, MapperPayload
from llama_mapper.storage.thresholds import StoredThresholds, ThresholdFile
from llama_mapper.yamlio import DataFileError

#: ``MapperService(learned=...)`` default: the tier the settings ask for.
FROM_SETTINGS: Any = object()
_PAYLOAD: TypeAdapter[MapperPayload | DetectorRequest] = TypeAdapter(
    MapperPayload | DetectorRequest
)


@dataclass(frozen=True)
class _TenantState:
    view: TenantSettings
    stored: StoredThresholds
    thresholds: ThresholdOverrides
    limits: GuardLimits
    learned: LearnedThresholds


def validation_message(exc: ValidationError, *, hide_extra_keys: bool = False) -> str:
    """Where and what, never the offending value (see describe_validation_errors)."""
    return describe_validation_errors(
        exc.errors(include_input=False, include_url=False), hide_extra_keys=hide_extra_keys
    )


class MapperService:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        *,
        adapters: AdapterRegistry | None = None,
        learned: LearnedTier | None = FROM_SETTINGS,
        overlay_root: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.adapters = adapters or default_registry()
        self.learned_reason: str | None = None
        if learned is FROM_SETTINGS:
            choice = serving_tier(settings)
            learned, self.learned_reason = choice.tier, choice.reason
        elif learned is None:
            self.learned_reason = f"{RULES_ONLY} (no learned tier given)"
        self.engine = MappingEngine(
            catalog,
            self.adapters,
            learned=learned,
            learned_threshold=settings.mapping.learned_threshold,
        )
        self.tenants = TenantConfigs(settings.tenant_view(), overlay_root)
        self.threshold_file = ThresholdFile(settings.state_dir)
        self.clock = clock
        self.legacy_requests = 0
        self._state: dict[str, _TenantState] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, config_file: Any = None) -> MapperService:
        root = settings.overlay_root(config_file)
        settings = apply_environment(settings, root)
        return cls(settings, load_catalog(settings.data_dir), overlay_root=root)

    @property
    def model_version(self) -> str:
        """The serving model, or ``rules-only`` when there is none (or it failed to load)."""
        learned = self.engine.learned
        if learned is None or getattr(learned, "state", None) == "failed":
            return RULES_ONLY
        return learned.version

    @property
    def learned_status(self) -> str:
        """One line for ``/ready``: which model serves, whether it is loaded, or why none."""
        learned = self.engine.learned
        if learned is None:
            return self.learned_reason or RULES_ONLY
        status = getattr(learned, "status", None)
        return status if isinstance(status, str) else f"ok ({learned.version})"

    def parse_payload(self, data: object) -> MapperPayload | DetectorRequest:
        try:
            return _PAYLOAD.validate_python(data)
        except ValidationError as exc:
            # A key the client invented may be a token or an identifier: never echo it.
            raise InvalidRequest(validation_message(exc, hide_extra_keys=True)) from None

    def map_payload(
        self,
        payload: MapperPayload | DetectorRequest,
        *,
        route: str,
        request_id: str | None = None,
        ts: str | None = None,
        tenant: str | None = None,
    ) -> dict[str, Any]:
        """Map one payload and return the ``MappingResponse`` as plain data.

        ``tenant`` is the authenticated tenant, when there is one: a payload naming another
        tenant is refused. ``ts`` lets a batch stamp all its items with one timestamp.
        """
        legacy = isinstance(payload, DetectorRequest)
        if legacy:
            if not self.settings.legacy.accept_detector_request:
                raise RetiredRequestShape(
                    "the DetectorRequest shape is no longer accepted; send a MapperPayload "
                    "with tenant_id"
                )
            with self._lock:
                self.legacy_requests += 1
        if tenant is None:
            tenant = payload.tenant_id or self.settings.default_tenant
        elif payload.tenant_id is not None and payload.tenant_id != tenant:
            raise TenantMismatch("tenant_id does not match the API key's tenant")
        state = self._tenant_state(tenant)
        detector = payload.detector.lower()
        if state.view.guard.enabled:
            skip = self._raw_text_keys(detector)
            try:
                with span("mapper.guard"):
                    check_raw_content(payload.output, state.limits, skip_keys=skip)
                    if payload.metadata:
                        check_raw_content(payload.metadata, state.limits, path="metadata")
            except RawContentError as exc:
                raise RawContentRejected(
                    f"{exc.path} looks like raw content ({exc.reason}); send detector "
                    "labels and scores, never the analysed text"
                ) from None
        try:
            with span("mapper.parse", detector=detector) as parsing:
                signals = self.engine.parse(detector, payload.output)
                parsing.set(signals=len(signals))
        except OutputShapeError as exc:
            raise InvalidOutput(f"output of detector {detector!r}: {exc}") from None
        with span("mapper.rules", detector=detector) as mapping:
            result = self.engine.map_signals(detector, signals, state.thresholds, state.learned)
            mapping.set(labels=len(result.labels), unmapped=len(result.unmapped))
        return self.response(
            result, detector, tenant, route, request_id or uuid.uuid4().hex, ts or self.now()
        )

    def now(self) -> str:
        return self.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def response(
        self,
        result: MappingResult,
        detector: str,
        tenant: str,
        route: str,
        request_id: str,
        ts: str,
    ) -> dict[str, Any]:
        return {
            "taxonomy": list(result.labels),
            "scores": dict(result.scores),
            "confidence": result.confidence,
            "frameworks": {label: list(refs) for label, refs in result.frameworks.items()},
            "notes": list(result.notes),
            "provenance": {
                "vendor": result.vendor,
                "detector": detector,
                "detector_version": result.detector_pack,
                "route": route,
                "method": dict(result.methods),
                "tenant_id": tenant,
                "request_id": request_id,
                "ts": ts,
                "unmapped_labels": list(result.unmapped),
                "model_candidates": {k: [list(c) for c in v] for k, v in result.candidates.items()},
            },
            "version_info": self.version_info(result.detector_pack),
        }

    def version_info(self, detector_pack: str | None = None) -> dict[str, Any]:
        return {
            "taxonomy": self.catalog.taxonomy.version,
            "frameworks": self.catalog.frameworks.version,
            "detector_pack": detector_pack,
            "model": self.model_version,
            "score_rules": SCORE_RULES_VERSION,
        }

    def _raw_text_keys(self, detector: str) -> frozenset[str]:
        pack = self.catalog.packs.get(detector)
        return self.adapters.raw_text_keys(pack.adapter if pack else detector)

    def _tenant_state(self, tenant: str) -> _TenantState:
        try:
            view = self.tenants.for_tenant(tenant)
            stored = self.threshold_file.load()
        except (OverlayError, DataFileError) as exc:
            raise ConfigurationError(
                f"configuration for tenant {tenant!r} is invalid: {exc}"
            ) from None
        cached = self._state.get(tenant)
        if cached is not None and cached.view is view and cached.stored is stored:
            return cached
        state = _TenantState(
            view,
            stored,
            _overrides(view, stored),
            _limits(view),
            LearnedThresholds(
                view.mapping.learned_threshold, dict(view.mapping.learned_detector_thresholds)
            ),
        )
        with self._lock:
            self._state[tenant] = state
        return state


def _overrides(view: TenantSettings, stored: StoredThresholds) -> ThresholdOverrides:
    """Threshold file < config file and environment < tenant overlay."""
    labels: dict[str, dict[str, float]] = {d: dict(m) for d, m in stored.labels.items()}
    for detector, per_label in view.mapping.label_thresholds.items():
        labels.setdefault(detector, {}).update(per_label)
    return ThresholdOverrides(
        default=view.mapping.default_threshold,
        detectors={**stored.detectors, **view.mapping.detector_thresholds},
        labels=labels,
    )


def _limits(view: TenantSettings) -> GuardLimits:
    guard = view.guard
    return GuardLimits(
        max_string_chars=guard.max_string_chars,
        max_words=guard.max_words,
        max_lines=guard.max_lines,
        base64_min_chars=guard.base64_min_chars,
    )
