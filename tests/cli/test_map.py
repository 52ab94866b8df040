"""``mapper map``: one detector output in, one MappingResponse out."""

from __future__ import annotations

import json

import pytest

from llama_mapper.catalog import load_catalog
from llama_mapper.schemas import MappingResponse

CATALOG = load_catalog()


def _response(result) -> dict:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    data = json.loads(result.stdout)
    MappingResponse.model_validate(data)  # the wire contract
    return data


def _frameworks(*labels: str) -> dict[str, list[str]]:
    return {label: list(CATALOG.frameworks.refs_for(label, CATALOG.taxonomy)) for label in labels}


def test_openai_moderation_response(ok, openai_response, state_dir):
    result = ok("map", "--detector", "openai-moderation", "--output", json.dumps(openai_response))
    data = _response(result)
    # Above the pack threshold (0.5): harassment, harassment/threatening, violence,
    # violence/graphic. self-harm (0.012 < 0.3) and sexual/minors (6e-7 < 0.2) are dropped.
    assert data["taxonomy"] == [
        "HARM.VIOLENCE.Physical",
        "HARM.SPEECH.Harassment",
        "HARM.SPEECH.Threat",
    ]
    assert data["scores"] == {
        "HARM.VIOLENCE.Physical": 0.9999992735124786,
        "HARM.SPEECH.Harassment": 0.8189693396524255,
        "HARM.SPEECH.Threat": 0.804985420696006,
    }
    assert data["confidence"] == 1.0
    assert data["notes"] == []
    assert data["frameworks"] == _frameworks(*data["taxonomy"])
    assert data["frameworks"]["HARM.SPEECH.Harassment"]  # evidences at least one control
    prov = data["provenance"]
    assert prov["vendor"] == "OpenAI"
    assert prov["detector"] == "openai-moderation"
    pack = CATALOG.packs.get("openai-moderation")
    assert prov["detector_version"] == pack.ref
    assert prov["route"] == "cli:map"
    assert prov["tenant_id"] == "default"
    assert prov["method"] == dict.fromkeys(data["taxonomy"], "exact")
    assert prov["unmapped_labels"] == []
    assert prov["ts"].endswith("Z")
    assert len(prov["request_id"]) == 32
    assert data["version_info"] == {
        "taxonomy": CATALOG.taxonomy.version,
        "frameworks": CATALOG.frameworks.version,
        "detector_pack": pack.ref,
        "model": "rules-only",
        "score_rules": "score-rules/1",
    }
    assert result.stderr == ""
    assert not (state_dir / "unmapped.json").exists()


def test_openai_short_options_and_tenant(ok, openai_output):
    data = _response(
        ok("map", "-d", "openai-moderation", "-o", openai_output({"hate": 0.9}), "-t", "acme")
    )
    assert data["taxonomy"] == ["HARM.SPEECH.Hate.Other"]
    assert data["provenance"]["tenant_id"] == "acme"


def test_openai_all_below_threshold_is_safe(ok, openai_output):
    data = _response(ok("map", "-d", "openai-moderation", "-o", openai_output({"violence": 0.1})))
    assert data["taxonomy"] == ["OTHER.Safe"]
    assert data["scores"] == {"OTHER.Safe": 0.9}
    assert data["provenance"]["method"] == {"OTHER.Safe": "threshold"}
    assert data["notes"] == ["every finding was below its threshold"]


def test_plain_label(ok):
    data = _response(ok("map", "--detector", "deberta-toxicity", "--output", "toxic"))
    assert data["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert data["scores"] == {"HARM.SPEECH.Toxicity": 1.0}
    assert data["provenance"]["method"] == {"HARM.SPEECH.Toxicity": "exact"}
    assert data["provenance"]["vendor"] == "Hugging Face community"
    assert data["frameworks"] == _frameworks("HARM.SPEECH.Toxicity")


def test_label_pipe_string(ok):
    data = _response(ok("map", "-d", "deberta-toxicity", "-o", "toxic|insult|threat"))
    assert data["taxonomy"] == ["HARM.SPEECH.Insult", "HARM.SPEECH.Threat", "HARM.SPEECH.Toxicity"]
    assert set(data["scores"].values()) == {1.0}


def test_label_pipe_with_benign_verdict(ok):
    data = _response(ok("map", "-d", "deberta-toxicity", "-o", "non-toxic | toxic"))
    assert data["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert "benign verdict overridden by findings above threshold" in data["notes"]


def test_normalized_spelling(ok):
    data = _response(ok("map", "-d", "deberta-toxicity", "-o", "Severe-Toxic"))
    assert data["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert data["provenance"]["method"] == {"HARM.SPEECH.Toxicity": "normalized"}


def test_json_string_output(ok):
    data = _response(ok("map", "-d", "deberta-toxicity", "-o", '"insult"'))
    assert data["taxonomy"] == ["HARM.SPEECH.Insult"]


def test_empty_list_means_no_findings(ok):
    data = _response(ok("map", "-d", "deberta-toxicity", "-o", "[]"))
    assert data["taxonomy"] == ["OTHER.Safe"]
    assert data["notes"] == ["detector reported no findings"]


def test_detector_without_pack_uses_aliases(ok):
    data = _response(ok("map", "-d", "home-grown", "-o", "toxicity"))
    assert data["taxonomy"] == ["HARM.SPEECH.Toxicity"]
    assert data["provenance"]["method"] == {"HARM.SPEECH.Toxicity": "alias"}
    assert data["provenance"]["detector_version"] is None
    assert data["notes"] == ["no detector pack: matched on taxonomy names and aliases only"]


def test_unmapped_label_is_persisted(ok, state_dir):
    for _ in range(2):
        data = _response(ok("map", "-d", "deberta-toxicity", "-o", "brand_new_label"))
        assert data["taxonomy"] == ["OTHER.Unknown"]
        assert data["provenance"]["unmapped_labels"] == ["brand_new_label"]
        assert data["confidence"] == 0.0
    rows = json.loads((state_dir / "unmapped.json").read_text())
    assert rows == [{"detector": "deberta-toxicity", "label": "brand_new_label", "count": 2}]


@pytest.mark.parametrize("as_json", [False, True])
def test_invalid_json_output(cli, as_json):
    args = ["map", "-d", "openai-moderation", "-o", '{"results": [{"flagged": tru']
    result = cli(*args, *(["--json"] if as_json else []))
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    if as_json:
        assert json.loads(lines[0]) == {
            "error": {"message": "--output starts like JSON but is not valid JSON"}
        }
    else:
        assert lines[0] == "error: --output starts like JSON but is not valid JSON"


def test_wrong_output_shape(cli):
    result = cli("map", "-d", "deberta-toxicity", "-o", "[1, 2]")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: INVALID_DETECTOR_OUTPUT: ")


@pytest.mark.parametrize("wrap", ["plain", "label-object", "openai"])
def test_raw_content_rejected_and_never_echoed(cli, prose, state_dir, wrap):
    output = {
        "plain": prose,
        "label-object": json.dumps([{"label": prose, "score": 0.9}]),
        "openai": json.dumps({"results": [{"category_scores": {prose: 0.9}}]}),
    }[wrap]
    result = cli("map", "-d", "openai-moderation", "-o", output)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "RAW_CONTENT_REJECTED" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    for fragment in ("Whitfield", "surgery", "Riverside clinic", prose[:40]):
        assert fragment not in result.stdout
        assert fragment not in result.stderr
    assert not (state_dir / "unmapped.json").exists()


def test_invalid_tenant_id(cli):
    result = cli("map", "-d", "deberta-toxicity", "-o", "toxic", "-t", "no spaces allowed")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: INVALID_REQUEST: MapperPayload.tenant_id: ")
    assert "no spaces allowed" not in result.stderr


def test_missing_config_file(cli, tmp_path):
    result = cli("map", "-d", "deberta-toxicity", "-o", "toxic", "-c", tmp_path / "nope.yaml")
    assert result.exit_code == 1
    assert result.stderr == f"error: config file {tmp_path / 'nope.yaml'} not found\n"


def test_required_options(cli):
    result = cli("map", "-d", "deberta-toxicity")
    assert result.exit_code == 2
    assert "--output" in result.stderr


def test_unreadable_unmapped_file_only_warns(cli, state_dir):
    state_dir.mkdir()
    (state_dir / "unmapped.json").write_text('[{"detector": ')
    result = cli("map", "-d", "deberta-toxicity", "-o", "brand_new_label")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["taxonomy"] == ["OTHER.Unknown"]
    assert result.stderr == (
        f"warning: unmapped labels not saved: {state_dir / 'unmapped.json'}: "
        "unreadable unmapped-label file\n"
    )
    assert (state_dir / "unmapped.json").read_text() == '[{"detector": '


def test_data_dir_adds_a_users_own_pack(ok, cli, tmp_path, catalog):
    detectors = tmp_path / "mydata" / "detectors"
    detectors.mkdir(parents=True)
    (detectors / "acme-scan.yaml").write_text(
        "detector: acme-scan\nversion: '1.0.0'\nvendor: Acme\nmaps:\n"
        "  MAIL_HIT: PII.Contact.Email\n  clean: OTHER.Safe\n"
    )
    result = ok("map", "-d", "acme-scan", "-o", "MAIL_HIT", "--data-dir", str(tmp_path / "mydata"))
    body = json.loads(result.stdout)
    assert body["taxonomy"] == ["PII.Contact.Email"]
    assert body["version_info"]["detector_pack"] == "acme-scan@1.0.0"
    without = json.loads(ok("map", "-d", "acme-scan", "-o", "MAIL_HIT").stdout)
    assert without["taxonomy"] == ["OTHER.Unknown"]
    valid = ok("validate-config", "--data-dir", str(tmp_path / "mydata"))
    assert f"{len(catalog.packs) + 1} detector packs" in valid.stdout  # ours plus acme-scan
