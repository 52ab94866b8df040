# Test rules for decision.rego; `orch policy test src/detector_orchestration/data/rego`.
package orch

import rego.v1

email := {"label": "PII.Contact.Email", "score": 0.99, "detector": "regex-pii", "span": {"start": 0, "end": 5}}

aws := {"label": "SECRET.CloudCredential.AWS", "score": 0.9, "detector": "secrets", "span": null}

full := {"achieved": 1, "required": 1, "sufficient": true, "missing": []}

short := {"achieved": 0.5, "required": 1, "sufficient": false, "missing": ["secrets"]}

test_nothing_found_allows if {
	decision.decision == "allow" with input as {"findings": [], "coverage": full}
}

test_email_redacts if {
	decision.decision == "redact" with input as {"findings": [email], "coverage": full}
}

test_secret_blocks_over_email if {
	decision.decision == "block" with input as {"findings": [email, aws], "coverage": full}
}

test_email_blocks_when_coverage_is_short if {
	decision.decision == "block" with input as {"findings": [email], "coverage": short}
}

test_weak_secret_is_ignored if {
	weak := object.union(aws, {"score": 0.1})
	decision.decision == "allow" with input as {"findings": [weak], "coverage": full}
}
