"""The YAML schema of a policy bundle (pydantic), and parsing it with clear errors.

A bundle says which detectors must run, how coverage is measured and how much is enough,
which content types it accepts, how conflicts are resolved and how the decision is made:
by its own rules, by an in-process Rego module, or by a remote OPA server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from detector_orchestration.domain.conflicts import Strategy
from detector_orchestration.domain.decision import DecisionRules
from detector_orchestration.domain.labels import DEFAULT_SEVERITY
from llama_mapper.errors import describe_validation_errors
from llama_mapper.yamlio import DataFileError

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME)]
LabelPattern = Annotated[
    str, StringConstraints(pattern=r"^(\*|[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*(\.\*)?)$")
]


class PolicyError(ValueError):
    """A bundle that does not parse or validate; the message names fields, never values."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectorSelection(_Strict):
    required: list[Name] = Field(default_factory=list)
    optional: list[Name] = Field(default_factory=list)
    weights: dict[Name, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    timeouts_ms: dict[Name, Annotated[int, Field(ge=1, le=120_000)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _disjoint(self) -> DetectorSelection:
        both = set(self.required) & set(self.optional)
        if both:
            raise ValueError(f"detectors both required and optional: {sorted(both)}")
        return self

    @property
    def all(self) -> list[str]:
        return [*self.required, *self.optional]


class CoverageRule(_Strict):
    method: Literal["required_set", "weighted", "taxonomy"] = "required_set"
    minimum: float = Field(1.0, ge=0.0, le=1.0)
    #: taxonomy method: the label families (``PII``, ``SECRET``...) that must be covered.
    categories: list[Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z_]*$")]] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _categories(self) -> CoverageRule:
        if self.method == "taxonomy" and not self.categories:
            raise ValueError("coverage.method taxonomy needs coverage.categories")
        return self


class ConflictRule(_Strict):
    strategy: Strategy = Strategy.HIGHEST_CONFIDENCE
    severity_order: list[LabelPattern] = Field(default_factory=lambda: list(DEFAULT_SEVERITY))


class RegoRule(_Strict):
    module: str | None = Field(None, min_length=1, description="Rego source of the module.")
    #: In a file on disk only: a path relative to the YAML file, inlined into ``module``
    #: when the file is loaded (stored bundles always carry the module itself).
    module_file: str | None = Field(None, min_length=1)
    query: str = Field("data.orch.decision", pattern=r"^data(\.[A-Za-z_][A-Za-z0-9_]*)+$")

    @model_validator(mode="after")
    def _one_source(self) -> RegoRule:
        if (self.module is None) == (self.module_file is None):
            raise ValueError("decision.rego needs exactly one of module, module_file")
        return self


class OpaRule(_Strict):
    path: str = Field(
        "orch/decision", pattern=r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$"
    )


class DecisionRule(_Strict):
    engine: Literal["rules", "rego", "opa"] = "rules"
    block_labels: list[LabelPattern] = Field(default_factory=list)
    redact_labels: list[LabelPattern] = Field(default_factory=list)
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    label_thresholds: dict[LabelPattern, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict
    )
    on_partial_coverage: Literal["evaluate", "block"] = "evaluate"
    rego: RegoRule | None = None
    opa: OpaRule | None = None

    @model_validator(mode="after")
    def _engine(self) -> DecisionRule:
        if self.engine == "rego" and self.rego is None:
            raise ValueError("decision.engine rego needs decision.rego.module")
        if self.engine == "opa" and self.opa is None:
            return self.model_copy(update={"opa": OpaRule()})
        return self

    def rules(self) -> DecisionRules:
        return DecisionRules(
            block_labels=tuple(self.block_labels),
            redact_labels=tuple(self.redact_labels),
            min_score=self.min_score,
            label_thresholds=dict(self.label_thresholds),
            block_on_partial_coverage=self.on_partial_coverage == "block",
        )


class ExampleSpan(_Strict):
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class ExampleFinding(_Strict):
    label: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.]+$")]
    score: float = Field(1.0, ge=0.0, le=1.0)
    detector: Name = "example"
    span: ExampleSpan | None = None


class Example(_Strict):
    """A worked case `orch policy test` checks: these findings must yield ``expect``."""

    name: str = Field(min_length=1, max_length=120)
    findings: list[ExampleFinding] = Field(default_factory=list)
    coverage_achieved: float = Field(1.0, ge=0.0, le=1.0)
    expect: Literal["allow", "redact", "block"]


class PolicyBundle(_Strict):
    name: Name
    description: str = ""
    content_types: list[str] = Field(default_factory=lambda: ["text/plain"], min_length=1)
    detectors: DetectorSelection = Field(default_factory=DetectorSelection)
    coverage: CoverageRule = Field(default_factory=CoverageRule)
    conflicts: ConflictRule = Field(default_factory=ConflictRule)
    decision: DecisionRule = Field(default_factory=DecisionRule)
    deadline_ms: int | None = Field(None, ge=10, le=120_000)
    examples: list[Example] = Field(default_factory=list)


def load_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise PolicyError(f"{source}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy bundle must be a YAML mapping")
    return data


def load_bundle_file(path: Path) -> tuple[str, PolicyBundle]:
    """``(document to store, bundle)`` from a YAML file, a ``module_file`` inlined."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            f"{path}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    data = load_yaml(text, str(path))
    rego = (
        (data.get("decision") or {}).get("rego") if isinstance(data.get("decision"), dict) else None
    )
    if isinstance(rego, dict) and isinstance(rego.get("module_file"), str):
        module_path = (path.parent / rego.pop("module_file")).resolve()
        try:
            rego["module"] = module_path.read_text(encoding="utf-8")
        except OSError:
            raise PolicyError(
                f"{path}: decision.rego.module_file {module_path} cannot be read"
            ) from None
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return text, parse_bundle(text, str(path))


def parse_bundle(text: str, source: str = "bundle") -> PolicyBundle:
    """Parse and validate one YAML bundle; ``PolicyError`` says where and what is wrong."""
    data = load_yaml(text, source)
    try:
        bundle = PolicyBundle.model_validate(data)
    except ValidationError as exc:
        summary = describe_validation_errors(exc.errors(include_input=False, include_url=False))
        raise PolicyError(f"{source}: {summary}") from None
    rego = bundle.decision.rego
    if bundle.decision.engine == "rego" and rego is not None:
        from detector_orchestration.policy.rego import RegoError, compile_module

        if rego.module is None:
            raise PolicyError(
                f"{source}: decision.rego.module_file is only allowed in a file on disk; "
                "load it with load_bundle_file"
            )
        try:
            compile_module(rego.module)
        except RegoError as exc:
            raise PolicyError(f"{source}: decision.rego.module: {exc}") from None
    return bundle


__all__ = ["DataFileError", "PolicyBundle", "PolicyError", "load_bundle_file", "parse_bundle"]
