"""The generative mapper's prompt is the same for training and serving."""

from llama_mapper.model import prompt


def test_training_example_extends_the_serving_prompt() -> None:
    labels = ["PII.Contact.Email", "OTHER.Unknown"]
    served = prompt.messages("acme-dlp", "EMAIL_ADDR", labels)
    trained = prompt.training_messages("acme-dlp", "EMAIL_ADDR", labels, "PII.Contact.Email")
    assert trained[:-1] == served
    assert trained[-1] == {"role": "assistant", "content": "PII.Contact.Email"}


def test_valid_labels_are_listed_before_the_request() -> None:
    labels = ["PII.Contact.Email", "OTHER.Unknown"]
    system, user = prompt.messages("acme-dlp", "EMAIL_ADDR", labels)
    assert system["role"] == "system"
    assert system["content"].endswith("PII.Contact.Email\nOTHER.Unknown")
    assert "EMAIL_ADDR" not in system["content"]
    assert user["content"] == "Detector: acme-dlp\nLabel: EMAIL_ADDR"
    assert prompt.choices(labels) == labels
