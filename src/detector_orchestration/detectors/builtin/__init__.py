"""The built-in detectors: offline, nothing to download, registered by name.

``builtin_detectors()`` maps each registry name to a factory; calling a factory builds a
fresh detector (keyword arguments are the detector's own options). Factories import their
module only when called, so listing the built-ins costs nothing and the prompt-injection
model and Presidio's engine are not loaded until that detector first runs (or
``warm_up()`` is called). ``presidio`` is optional: it is listed only when
presidio-analyzer is installed (the ``presidio`` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from detector_orchestration.detectors.base import Detector

DetectorFactory = Callable[..., Detector]


def _regex_pii(**options: Any) -> Detector:
    from detector_orchestration.detectors.builtin.regex_pii import RegexPiiDetector

    return RegexPiiDetector(**options)


def _secrets(**options: Any) -> Detector:
    from detector_orchestration.detectors.builtin.secrets import SecretsDetector

    return SecretsDetector(**options)


def _prompt_injection(**options: Any) -> Detector:
    from detector_orchestration.detectors.builtin.prompt_injection import (
        PromptInjectionDetector,
    )

    return PromptInjectionDetector(**options)


def _presidio(**options: Any) -> Detector:
    from detector_orchestration.detectors.builtin.presidio import PresidioDetector

    return PresidioDetector(**options)


_BUILTINS: dict[str, DetectorFactory] = {
    "regex-pii": _regex_pii,
    "secrets": _secrets,
    "prompt-injection": _prompt_injection,
}


def builtin_detectors() -> dict[str, DetectorFactory]:
    """Registry name -> factory, for every built-in detector that is installed."""
    from detector_orchestration.detectors.builtin.presidio.engine import presidio_installed

    factories = dict(_BUILTINS)
    if presidio_installed():
        factories["presidio"] = _presidio
    return factories
