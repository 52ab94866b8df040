"""Run Yelp detect-secrets' plugins in-process over a text, line by line.

detect-secrets keeps its plugin and filter configuration in process-global settings, and
its entropy plugins swap their regex while scanning unquoted text, so scans are serialized
by one lock and the settings are configured once, the first time a scan runs. Results keep
the plugin's ``secret_type``, the line and the secret's character span; the secret value
itself stays inside this module.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Entropy limits of ``detect-secrets scan``'s defaults.
BASE64_LIMIT = 4.5
HEX_LIMIT = 3.0
_ENTROPY_TYPES = frozenset({"Base64 High Entropy String", "Hex High Entropy String"})
#: An entropy finding is kept only with one of these words on its line
#: (KeywordDetector's own vocabulary plus the usual token words).
_KEYWORDS = re.compile(
    r"api[_-]?key|auth|token|secret|passw(?:or)?d|pwd|credential|private[_-]?key|access[_-]?key"
    r"|client[_-]?key|bearer|signature|salt|contrase[nñ]a",
    re.IGNORECASE,
)
#: Values this long are located by themselves; shorter ones by the plugin's patterns.
_MIN_DIRECT = 8
_PRIVATE_KEY = "Private Key"
_JWT = "JSON Web Token"
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_=.-]*")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")

_FILENAME = "adhoc-string-scan"  # what detect-secrets names ad-hoc input
_LOCK = threading.Lock()
_CONFIGURED: list[dict[str, Any]] = []


@dataclass(frozen=True, slots=True)
class Finding:
    secret_type: str
    line_number: int  # 1-based, as in detect-secrets reports
    start: int
    end: int


def plugins_used() -> list[dict[str, Any]]:
    """Every built-in plugin, configured as ``detect-secrets scan`` configures them."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
    used: list[dict[str, Any]] = []
    for name in sorted(map(_class_name, classes)):
        if name == "Base64HighEntropyString":
            used.append({"name": name, "limit": BASE64_LIMIT})
        elif name == "HexHighEntropyString":
            used.append({"name": name, "limit": HEX_LIMIT})
        else:
            used.append({"name": name})
    return used


def _class_name(plugin: type) -> str:
    return plugin.__name__


def _configure() -> list[dict[str, Any]]:
    """Enable every plugin once per process; quiet detect-secrets' own logger."""
    if not _CONFIGURED:
        from detect_secrets.settings import get_filters, get_settings

        used = plugins_used()
        settings = get_settings()
        settings.configure_plugins(used)
        # What ``scan_line`` does on every call, done once: content is not a file.
        settings.disable_filters("detect_secrets.filters.common.is_invalid_file")
        get_filters.cache_clear()
        # Its debug messages can name the file and the filtered value: never let them out.
        logging.getLogger("detect-secrets").setLevel(logging.WARNING)
        _CONFIGURED.extend(used)
    return _CONFIGURED


def _scan_line(plugins: list[Any], line: str) -> Iterator[Any]:
    """``detect_secrets.core.scan.scan_line`` for a chosen set of plugins.

    The public ``scan_line`` runs every configured plugin and clears the filter cache on
    each call; in its ad-hoc mode the entropy plugins turn every token into a candidate
    that every filter then inspects. Here the entropy limit is applied first, so filters
    only see real candidates. The helpers are detect-secrets 1.5.0's own (pinned).
    """
    from detect_secrets.core.scan import _is_filtered_out
    from detect_secrets.util.code_snippet import get_code_snippet
    from detect_secrets.util.inject import call_function_with_arguments

    context = get_code_snippet(lines=[line], line_number=1)
    for plugin in plugins:
        found = call_function_with_arguments(
            plugin.analyze_line,
            filename=_FILENAME,
            line=line,
            line_number=0,
            context=context,
            enable_eager_search=True,
        )
        for secret in found or ():
            value = secret.secret_value or ""
            if secret.type in _ENTROPY_TYPES and not _entropy_high(plugin, value):
                continue
            if _is_filtered_out(
                required_filter_parameters=["secret"],
                filename=_FILENAME,
                secret=value,
                plugin=plugin,
                line=line,
            ) or _is_filtered_out(
                required_filter_parameters=["context"],
                filename=_FILENAME,
                secret=value,
                plugin=plugin,
                line=line,
                context=context,
            ):
                continue
            yield secret


def _entropy_high(plugin: Any, value: str) -> bool:
    return bool(plugin.calculate_shannon_entropy(value) > plugin.entropy_limit)


def configured_plugins() -> list[dict[str, Any]]:
    with _LOCK:
        return [dict(item) for item in _configure()]


def scan(text: str, *, entropy_needs_keyword: bool = True) -> list[Finding]:
    """All secrets in ``text``, sorted by position.

    This is detect-secrets' ad-hoc mode (``detect-secrets scan --string``): there the
    entropy plugins list every token and leave the entropy verdict to the caller, so the
    limit is applied here, and with ``entropy_needs_keyword`` a high-entropy string counts
    only on a line with a credential word (commit hashes and ids in prose are not secrets).
    """
    from detect_secrets.settings import get_plugins

    findings: list[Finding] = []
    with _LOCK:
        _configure()
        every = list(get_plugins())
        plugins = {plugin.secret_type: plugin for plugin in every}
        without_entropy = [p for p in every if p.secret_type not in _ENTROPY_TYPES]
        for number, (offset, line) in enumerate(_lines(text), start=1):
            keyword = _KEYWORDS.search(line) is not None
            chosen = every if keyword or not entropy_needs_keyword else without_entropy
            for secret in _scan_line(chosen, line):
                plugin = plugins.get(secret.type)
                value = secret.secret_value or ""
                findings.extend(
                    Finding(
                        secret.type, number, offset + start, _extend(text, offset, end, secret.type)
                    )
                    for start, end in _spans(plugin, line, value)
                )
    findings.sort(key=lambda f: (f.start, f.end, f.secret_type))
    return _unique(findings)


def _unique(findings: list[Finding]) -> list[Finding]:
    kept: list[Finding] = []
    for finding in findings:
        if not kept or kept[-1] != finding:
            kept.append(finding)
    return kept


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(offset of the line in ``text``, the line without its line break)."""
    offset = 0
    for raw in text.splitlines(keepends=True):
        yield offset, raw.rstrip("\r\n")
        offset += len(raw)


def _spans(plugin: Any, line: str, value: str) -> Iterator[tuple[int, int]]:
    """Where the secret sits in its line.

    A long value is located directly. Some plugins report only a regex group (GitHub
    tokens report their ``ghp`` prefix), so a short value is located by the plugin's own
    patterns, whole match; failing both, the whole line is the span.
    """
    if len(value) >= _MIN_DIRECT and value in line:
        start = line.find(value)
        while start >= 0:
            yield start, start + len(value)
            start = line.find(value, start + len(value))
        return
    matches = [
        found.span()
        for regex in getattr(plugin, "denylist", ())
        for found in regex.finditer(line)
        if value in found.group(0)
    ]
    if matches:
        yield from matches
    elif value and value in line:
        start = line.find(value)
        yield start, start + len(value)
    else:
        yield 0, len(line)


def _extend(text: str, offset: int, end: int, secret_type: str) -> int:
    """Grow a span the plugin cut short, so redaction covers the whole secret.

    A private key runs from its BEGIN header to its END footer; a JWT's regex stops before
    part of its signature, so its span runs to the end of the token.
    """
    absolute_end = offset + end
    if secret_type == _PRIVATE_KEY:
        footer = _PEM_END.search(text, absolute_end)
        return footer.end() if footer else absolute_end
    if secret_type == _JWT:
        tail = _TOKEN_TAIL.match(text, absolute_end)
        return tail.end() if tail else absolute_end
    return absolute_end
