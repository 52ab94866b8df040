# orch decision module. Input contract (docs/orch.md):
#   input.findings[]: {label, score, detector, detectors, span: {start, end} | null}
#   input.coverage: {method, achieved, required, missing, sufficient}
#   input.detectors: {name: status}, input.tenant_id, input.content_type, input.policy
# Output: data.orch.decision = {"decision": "allow" | "redact" | "block", "reasons": [...]}
package orch

import rego.v1

blocking_families := {"SECRET", "JAILBREAK", "PROMPT_INJECTION", "SECURITY"}

family(label) := split(label, ".")[0]

counted contains f if {
	some f in input.findings
	f.score >= 0.5
}

block_reasons contains sprintf("block_label:%s", [f.label]) if {
	some f in counted
	family(f.label) in blocking_families
}

block_reasons contains "partial_coverage_with_pii" if {
	not input.coverage.sufficient
	some f in counted
	family(f.label) == "PII"
}

redact_reasons contains sprintf("redact_label:%s", [f.label]) if {
	some f in counted
	family(f.label) == "PII"
}

default decision := {"decision": "allow", "reasons": []}

decision := {"decision": "block", "reasons": block_reasons} if {
	count(block_reasons) > 0
}

decision := {"decision": "redact", "reasons": redact_reasons} if {
	count(block_reasons) == 0
	count(redact_reasons) > 0
}
