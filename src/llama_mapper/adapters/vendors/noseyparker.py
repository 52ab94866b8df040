"""Nosey Parker report (``noseyparker report --format json``, or ``--format jsonl``).

``report --format json`` writes a JSON array of findings; ``--format jsonl`` writes the same
finding objects one per line, which the caller sends as an array. A clean datastore gives
``[]``, and a single finding object is accepted too. A finding (v0.17 and later: the
``Finding`` of ``noseyparker generate json-schema`` and the report snapshots in
``crates/noseyparker-cli/tests``) is
``{"finding_id", "rule_name", "rule_text_id", "rule_structural_id", "groups",
"num_matches", "num_redundant_matches", "statuses", "comment", "mean_score", "matches":
[{"provenance", "blob_metadata", "blob_id", "location": {"offset_span", "source_span"},
"groups", "snippet": {"before", "matching", "after"}, "structural_id", "rule_name",
"rule_text_id", "rule_structural_id", "score", "comment", "status", "redundant_to"}]}``;
reports before v0.17 have only ``rule_name`` and ``num_matches`` beside ``matches``, and
``match_content`` instead of ``groups``.

Each finding is one signal, score 1.0: Nosey Parker has no confidence (``score`` and
``mean_score`` are null in the report snapshots), a finding exists only when a rule
matched. The label is ``rule_text_id`` (``np.github.1``) when the report has it, because
ids are unique and survive the renames the CHANGELOG lists (several rules share one name,
and names such as ``AWS S3 Bucket (path style)`` changed); otherwise ``rule_name``. One
signal per finding rather than per match: the matches of a finding are the same secret
found in several places, and their ``offset_span`` is a byte range in the scanned blob,
not in the analysed text, so it is not copied as a span. ``statuses`` (accept/reject
triage) and ``num_matches`` are not read.

Raw-text keys, none of them read: ``matches`` (everything about each occurrence),
``snippet`` (the matched text and the lines around it), ``groups`` (the captured
secrets, base64-encoded), ``match_content`` (the match, in older reports),
``provenance`` (file paths, repository paths, commit ids, author and committer names and
e-mails, commit messages), ``blob_metadata``, ``blob_id`` and ``location`` (where the
secret sits), ``comment`` (free-text triage notes), and ``finding_id``,
``structural_id`` and ``redundant_to`` (content-derived digests of the secret: a digest
lets anyone confirm a guessed secret offline).
"""

from __future__ import annotations

from llama_mapper.adapters.base import OutputShapeError, Signal
from llama_mapper.adapters.vendors._fields import as_object, label_field, records

_ID = "rule_text_id"
_NAME = "rule_name"
_KEYS = (_ID, _NAME)


class NoseyParkerAdapter:
    name = "noseyparker"
    raw_text_keys = frozenset(
        {
            "matches",
            "snippet",
            "groups",
            "match_content",
            "provenance",
            "blob_metadata",
            "blob_id",
            "location",
            "comment",
            "finding_id",
            "structural_id",
            "redundant_to",
        }
    )

    def parse(self, output: object) -> list[Signal] | None:
        found = records(output, *_KEYS)
        return None if found is None else [_finding(item) for item in found]


def _finding(item: object) -> Signal:
    where = "noseyparker finding"
    finding = as_object(item, f"each {where}")
    key = _ID if finding.get(_ID) is not None else _NAME
    if finding.get(key) is None:
        raise OutputShapeError(f"{where} needs the field '{_ID}' or '{_NAME}'")
    return Signal(label_field(finding, key, where), 1.0)
