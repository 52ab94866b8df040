"""Built-in vendor adapters, one module per vendor.

Each module documents the vendor response it reads and why; ``ALL`` registers one instance
per adapter name used by the detector packs.
"""

from llama_mapper.adapters.base import Adapter
from llama_mapper.adapters.vendors.aws_comprehend import AwsComprehendAdapter
from llama_mapper.adapters.vendors.aws_macie import AwsMacieAdapter
from llama_mapper.adapters.vendors.azure_content_safety import AzureContentSafetyAdapter
from llama_mapper.adapters.vendors.azure_language_pii import AzureLanguagePiiAdapter
from llama_mapper.adapters.vendors.bedrock_guardrails import BedrockGuardrailsAdapter
from llama_mapper.adapters.vendors.detect_secrets import DetectSecretsAdapter
from llama_mapper.adapters.vendors.fms_detector import FmsDetectorAdapter
from llama_mapper.adapters.vendors.gitleaks import GitleaksAdapter
from llama_mapper.adapters.vendors.google_dlp import GoogleDlpAdapter
from llama_mapper.adapters.vendors.granite_guardian import GraniteGuardianAdapter
from llama_mapper.adapters.vendors.hf_classifier import HfClassifierAdapter
from llama_mapper.adapters.vendors.lakera_guard import LakeraGuardAdapter
from llama_mapper.adapters.vendors.llama_guard import LlamaGuardAdapter
from llama_mapper.adapters.vendors.llm_guard import LlmGuardAdapter
from llama_mapper.adapters.vendors.nemo_guardrails import NemoGuardrailsAdapter
from llama_mapper.adapters.vendors.noseyparker import NoseyParkerAdapter
from llama_mapper.adapters.vendors.openai_moderation import OpenAIModerationAdapter
from llama_mapper.adapters.vendors.presidio import PresidioAdapter
from llama_mapper.adapters.vendors.regex_pii import RegexPiiAdapter
from llama_mapper.adapters.vendors.trufflehog import TrufflehogAdapter

ALL: tuple[Adapter, ...] = (
    PresidioAdapter(),
    OpenAIModerationAdapter(),
    AzureContentSafetyAdapter(),
    BedrockGuardrailsAdapter(),
    GoogleDlpAdapter(),
    LlamaGuardAdapter(),
    NemoGuardrailsAdapter(),
    LlmGuardAdapter(),
    HfClassifierAdapter("prompt-guard"),
    HfClassifierAdapter("deberta-toxicity"),
    HfClassifierAdapter("detoxify"),
    HfClassifierAdapter("prompt-injection"),
    DetectSecretsAdapter(),
    RegexPiiAdapter(),
    FmsDetectorAdapter(),
    GraniteGuardianAdapter(),
    LakeraGuardAdapter(),
    GitleaksAdapter(),
    TrufflehogAdapter(),
    AwsMacieAdapter(),
    AwsComprehendAdapter(),
    NoseyParkerAdapter(),
    AzureLanguagePiiAdapter(),
)

__all__ = ["ALL"]
