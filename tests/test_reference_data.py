"""The packaged taxonomy, frameworks and packs honour the contract and each other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llama_mapper.adapters import default_registry
from llama_mapper.catalog import Catalog
from llama_mapper.packs.lint import lint_pack
from llama_mapper.taxonomy.normalize import normalize_label

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "taxonomy-contract.md"
REQUIRED_DETECTORS = {
    "presidio",
    "openai-moderation",
    "azure-content-safety",
    "bedrock-guardrails",
    "google-dlp",
    "llama-guard",
    "nemo-guardrails",
    "llm-guard",
    "prompt-guard",
    "detoxify",
    "deberta-toxicity",
    "detect-secrets",
    "regex-pii",
    "fms-detector",
    "granite-guardian",
}
FRAMEWORKS = {"SOC2", "ISO27001", "HIPAA", "GDPR", "EU_AI_ACT", "NIST_AI_RMF", "OWASP_LLM"}


def contract_labels() -> list[str]:
    if not CONTRACT.exists():
        pytest.skip(f"taxonomy contract not found at {CONTRACT}")
    return re.findall(r"^\| ([A-Z_]+\.[A-Za-z0-9_.]+) \|", CONTRACT.read_text(), re.MULTILINE)


def test_taxonomy_contains_every_contract_label(catalog: Catalog) -> None:
    labels = contract_labels()
    assert len(labels) >= 80
    missing = [label for label in labels if label not in catalog.taxonomy]
    assert missing == []
    assert catalog.taxonomy.version == "2026.11"


def test_finer_labels_sit_below_contract_labels(catalog: Catalog) -> None:
    contract = set(contract_labels())
    for name in catalog.taxonomy:
        if name not in contract:
            assert catalog.taxonomy.ancestors(name), f"{name} has no known ancestor"


def test_every_label_has_description_and_aliases(catalog: Catalog) -> None:
    for label in catalog.taxonomy.labels.values():
        assert label.description.strip(), label.name
        assert label.aliases, label.name


def test_benign_words_are_safe_and_negations_are_not_harms(catalog: Catalog) -> None:
    for word in ["safe", "benign", "non-toxic", "not toxic", "no violation", "clean"]:
        assert catalog.taxonomy.lookup_alias(normalize_label(word)) == "OTHER.Safe", word


def test_every_label_but_safe_and_unknown_maps_to_a_control(catalog: Catalog) -> None:
    assert catalog.frameworks.check_against(catalog.taxonomy) == []
    for name in catalog.taxonomy:
        refs = catalog.frameworks.refs_for(name, catalog.taxonomy)
        if name in ("OTHER.Safe", "OTHER.Unknown"):
            assert refs == ()
        else:
            assert refs, name


def test_frameworks_use_real_identifier_shapes(catalog: Catalog) -> None:
    frameworks = catalog.frameworks
    assert set(frameworks.titles) == FRAMEWORKS
    shapes = {
        "SOC2": r"^(CC\d\.\d|[ACP]\d\.\d+|PI\d\.\d|P\d\.\d)$",
        "ISO27001": r"^A\.[5-8]\.\d{1,2}$",
        "HIPAA": r"^16[04]\.\d{3}(\([a-zA-Z0-9]+\))*$",
        "GDPR": r"^Art\.\d+(\(\d+\))?(\([a-z]\))?$",
        "EU_AI_ACT": r"^Art\.\d+$",
        "NIST_AI_RMF": r"^(GOVERN|MAP|MEASURE|MANAGE) \d\.\d+$",
        "OWASP_LLM": r"^LLM(0[1-9]|10)$",
    }
    for control in frameworks.controls.values():
        assert re.match(shapes[control.framework], control.control_id), control.ref
        assert control.title.strip()
    for expected in [
        "SOC2:CC7.2",
        "ISO27001:A.8.12",
        "HIPAA:164.312(b)",
        "GDPR:Art.9",
        "EU_AI_ACT:Art.50",
        "NIST_AI_RMF:MEASURE 2.7",
        "OWASP_LLM:LLM01",
    ]:
        assert expected in frameworks.controls


def test_every_mapping_has_a_rationale(catalog: Catalog) -> None:
    for label, mappings in catalog.frameworks.mappings.items():
        for mapping in mappings:
            assert len(mapping.rationale) > 20, (label, mapping.control.ref)


def test_required_detector_packs_exist_and_lint_clean(catalog: Catalog) -> None:
    assert set(catalog.packs.names()) >= REQUIRED_DETECTORS
    adapters = frozenset(default_registry().names())
    for pack in catalog.packs:
        errors = [i for i in lint_pack(pack, catalog.taxonomy, adapters) if i.severity == "error"]
        assert errors == [], pack.detector
        # "generic" (plain labels, no native adapter) is valid, as in lint_pack.
        assert pack.adapter == "generic" or pack.adapter in adapters, pack.detector
        assert pack.description.strip()


@pytest.mark.parametrize(
    ("detector", "minimum"),
    [
        ("presidio", 50),
        ("google-dlp", 60),
        ("bedrock-guardrails", 31),
        ("llama-guard", 15),
        ("nemo-guardrails", 23),
        ("openai-moderation", 13),
        ("detect-secrets", 25),
        ("llm-guard", 20),
    ],
)
def test_pack_vocabularies_are_complete(catalog: Catalog, detector: str, minimum: int) -> None:
    pack = catalog.packs.get(detector)
    assert pack is not None
    assert len(pack.maps) >= minimum


def test_vendor_vocabularies_include_documented_labels(catalog: Catalog) -> None:
    expected = {
        "openai-moderation": [
            "illicit",
            "illicit/violent",
            "self-harm/intent",
            "self-harm/instructions",
            "sexual/minors",
            "violence/graphic",
        ],
        "llama-guard": [f"S{i}" for i in range(1, 15)],
        "nemo-guardrails": [f"S{i}" for i in range(1, 24)],
        "azure-content-safety": [
            "Hate",
            "SelfHarm",
            "Sexual",
            "Violence",
            "UserPromptAttack",
            "DocumentAttack",
            "ProtectedMaterialText",
            "Ungrounded",
        ],
        "bedrock-guardrails": [
            "PROMPT_ATTACK",
            "MISCONDUCT",
            "US_SOCIAL_SECURITY_NUMBER",
            "DENIED_TOPIC",
            "GROUNDING",
            "RELEVANCE",
            "AWS_SECRET_KEY",
        ],
        "presidio": ["US_SSN", "IN_AADHAAR", "UK_NHS", "KR_RRN", "IBAN_CODE", "CRYPTO"],
    }
    for detector, labels in expected.items():
        pack = catalog.packs.get(detector)
        assert pack is not None
        for label in labels:
            assert pack.lookup(label) is not None, (detector, label)


def test_shipped_migration_plan_is_current() -> None:
    from llama_mapper.catalog import PACKAGED_DATA
    from llama_mapper.taxonomy.loader import load_taxonomy
    from llama_mapper.taxonomy.migrate import plan_migration
    from llama_mapper.yamlio import load_yaml_file

    migrations = PACKAGED_DATA / "migrations"
    plan = plan_migration(
        load_taxonomy(migrations / "taxonomy-2025.09.yaml"),
        load_taxonomy(PACKAGED_DATA / "taxonomy.yaml"),
    )
    shipped = load_yaml_file(migrations / "plan-2025.09-to-2026.11.yaml")
    assert shipped == plan.to_dict(), "regenerate with `mapper taxonomy migrate-plan … -o`"
