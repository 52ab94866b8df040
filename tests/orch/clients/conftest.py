import pytest
from tests.orch.clients import vendor_server as vs

from llama_mapper.config.settings import SecretsSettings
from llama_mapper.secrets import EnvSecretProvider


@pytest.fixture(scope="session")
def vendor():
    with vs.ServerThread() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_state():
    vs.STATE.mode.clear()
    vs.STATE.requests.clear()
    return vs.STATE


@pytest.fixture
def secrets():
    environ = {
        "LLAMA_MAPPER_SECRET_OPENAI_KEY": vs.OPENAI_KEY,
        "LLAMA_MAPPER_SECRET_AZURE_KEY": vs.AZURE_KEY,
        "LLAMA_MAPPER_SECRET_LAKERA_KEY": vs.LAKERA_KEY,
        "LLAMA_MAPPER_SECRET_AWS_ACCESS_KEY_ID": vs.AWS_ACCESS_KEY,
        "LLAMA_MAPPER_SECRET_AWS_SECRET_ACCESS_KEY": vs.AWS_SECRET_KEY,
        "LLAMA_MAPPER_SECRET_WRONG_KEY": "sk-wrong",
    }
    return EnvSecretProvider(SecretsSettings(cache_seconds=0), environ=environ)
