"""Field-level envelope encryption for the few metadata fields a tenant chooses to keep.

* :mod:`~llama_mapper.crypto.envelope`: AES-256-GCM per field under a data key (DEK), with
  associated data binding tenant, event id and field name (pure, no I/O).
* :mod:`~llama_mapper.crypto.kek`: key-encryption keys that wrap DEKs, from the
  SecretProvider (a versioned secret, or Vault/OpenBao transit), with re-wrap.
* :mod:`~llama_mapper.crypto.sealer`: what the write path calls: pick the kept fields,
  reuse a short-lived per-tenant DEK, seal.
"""

from __future__ import annotations

from llama_mapper.crypto.envelope import DecryptionError, open_fields, seal_fields
from llama_mapper.crypto.kek import KeyWrapper, LocalKeyWrapper, TransitKeyWrapper, key_wrapper
from llama_mapper.crypto.sealer import MetadataSealer

__all__ = [
    "DecryptionError",
    "KeyWrapper",
    "LocalKeyWrapper",
    "MetadataSealer",
    "TransitKeyWrapper",
    "key_wrapper",
    "open_fields",
    "seal_fields",
]
