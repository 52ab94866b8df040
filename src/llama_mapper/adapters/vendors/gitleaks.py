"""Gitleaks JSON report (``gitleaks git|dir|stdin|detect --report-format json``).

The report is a JSON array of findings, one per match (``report.Finding`` in gitleaks v8):
``{"RuleID", "Description", "StartLine", "EndLine", "StartColumn", "EndColumn", "Match",
"Secret", "File", "SymlinkFile", "Commit", "Link", "Entropy", "Author", "Email", "Date",
"Message", "Tags", "Fingerprint"}``. A clean scan writes ``[]``. A single finding object is
accepted too. Every finding is one ``RuleID`` signal (``aws-access-token``,
``generic-api-key``…) with score 1.0, as for detect-secrets: gitleaks has no confidence, a
finding exists only when a rule matched. ``Entropy`` is the Shannon entropy of the secret,
not a likelihood, and is not read. Lines and columns locate the match in a file, not in
the analysed text, and are not copied.

Raw-text keys: ``Match`` (the matched text), ``Secret`` (the captured secret), ``Line``,
``Context`` (the line around it, older v8 reports) and ``Fragment`` (the scanned chunk, when
present); ``Message``, ``Author`` and ``Email`` (the commit's message and its author's name
and address: personal data); ``File``, ``SymlinkFile``, ``Link`` and ``Fingerprint`` (paths,
which can name people or projects, like detect-secrets' ``filename``). ``Description`` is
the rule's own prose, not user content, but it is longer than the raw-content guard's
word limit, so it is listed as well: none of these is ever read.
"""

from __future__ import annotations

from llama_mapper.adapters.base import Signal
from llama_mapper.adapters.vendors._fields import as_object, label_field, records

_RULE = "RuleID"


class GitleaksAdapter:
    name = "gitleaks"
    raw_text_keys = frozenset(
        {
            "Match",
            "Secret",
            "Line",
            "Context",
            "Fragment",
            "Message",
            "Author",
            "Email",
            "File",
            "SymlinkFile",
            "Link",
            "Fingerprint",
            "Description",
        }
    )

    def parse(self, output: object) -> list[Signal] | None:
        found = records(output, _RULE)
        return None if found is None else [_finding(item) for item in found]


def _finding(item: object) -> Signal:
    finding = as_object(item, "each gitleaks finding")
    return Signal(label_field(finding, _RULE, "gitleaks finding"), 1.0)
