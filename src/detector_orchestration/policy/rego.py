"""Rego decisions in-process with regorus (PyPI ``gordon-to-regorus``).

Input/output contract (docs/orch.md): the query gets ``input`` =
``{tenant_id, content_type, policy: {bundle, version}, findings: [{label, score, detector,
detectors, span}], coverage: {method, achieved, required, missing, sufficient},
detectors: {name: status}}`` and must produce either a string ``allow|redact|block`` or an
object ``{decision, reasons?: [str]}``. An undefined result means ``allow``.
The content itself is never part of the input.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import regorus

from detector_orchestration.domain.model import Decision


class RegoError(ValueError):
    """A module that does not compile, or a result outside the contract."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).split("Stack backtrace:")[0].strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # regorus puts the location first and "error: ..." last: keep both, one line.
    return " ".join(lines[:1] + lines[-1:]) if len(lines) > 1 else (lines[0] if lines else "error")


def compile_module(module: str, path: str = "policy.rego") -> regorus.Engine:
    engine = regorus.Engine()
    try:
        engine.add_policy(path, module)
    except RuntimeError as exc:
        raise RegoError(_first_line(exc)) from None
    return engine


@dataclass(frozen=True)
class RegoResult:
    decision: Decision
    reasons: tuple[str, ...]


def interpret(value: Any) -> RegoResult:
    """The query's value as a decision, per the contract above."""
    if value is None:
        return RegoResult(Decision.ALLOW, ("rego:undefined",))
    reasons: tuple[str, ...] = ()
    if isinstance(value, Mapping):
        raw_reasons = value.get("reasons") or ()
        if not isinstance(raw_reasons, list | tuple | set) or not all(
            isinstance(r, str) for r in raw_reasons
        ):
            raise RegoError("reasons must be a list of strings")
        reasons = tuple(sorted(raw_reasons))
        value = value.get("decision")
    if not isinstance(value, str) or value not in {d.value for d in Decision}:
        raise RegoError("the decision must be one of allow, redact, block")
    return RegoResult(Decision(value), reasons)


class RegoEvaluator:
    """A compiled module, one engine per thread.

    regorus engines are "unsendable": an engine must be used only by the thread that made
    it (the event loop's, a CLI's, a test server's). Each thread compiles its own copy
    once and clones it per evaluation, so inputs never leak between evaluations.
    """

    def __init__(self, module: str, query: str) -> None:
        self.module = module
        self.query = query
        compile_module(module)  # fail now, at load time, on a broken module
        self._local = threading.local()

    def _engine(self) -> regorus.Engine:
        engine = getattr(self._local, "engine", None)
        if engine is None:
            engine = compile_module(self.module)
            self._local.engine = engine
        return engine

    def evaluate(self, input_doc: Mapping[str, Any]) -> RegoResult:
        engine = self._engine().clone()
        engine.set_input(dict(input_doc))
        try:
            value = engine.eval_rule(self.query)
        except RuntimeError as exc:
            raise RegoError(_first_line(exc)) from None
        return interpret(value)


@dataclass(frozen=True)
class RegoTestResult:
    file: str
    test: str
    passed: bool
    error: str | None = None


def run_tests(modules: Mapping[str, str]) -> list[RegoTestResult]:
    """Every ``test_*`` rule of every package in ``modules`` (path -> source), OPA style:
    a test passes when it evaluates to true."""
    engine = regorus.Engine()
    for path, source in modules.items():
        try:
            engine.add_policy(path, source)
        except RuntimeError as exc:
            return [RegoTestResult(path, "<compile>", False, _first_line(exc))]
    results: list[RegoTestResult] = []
    for path, source in modules.items():
        package = _package(source)
        for name in _test_rules(source):
            try:
                value = engine.clone().eval_rule(f"data.{package}.{name}")
            except RuntimeError as exc:
                results.append(RegoTestResult(path, name, False, _first_line(exc)))
                continue
            results.append(RegoTestResult(path, name, value is True))
    return results


def _package(source: str) -> str:
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("package "):
            return stripped.split(None, 1)[1].strip()
    raise RegoError("module has no package declaration")


def _test_rules(source: str) -> list[str]:
    names: list[str] = []
    for line in source.splitlines():
        if line.startswith("test_"):
            name = line.split()[0].split("(")[0].split(":")[0]
            if name not in names:
                names.append(name)
    return names
