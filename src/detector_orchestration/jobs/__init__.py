"""Async jobs: ``processing_mode: async`` queued, run by workers, read back or cancelled,
and announced by signed webhooks.

* :mod:`.model`: the job document and its states (never the content).
* :mod:`.queue` / :mod:`.redis_queue`: the queue contract, in-process and Redis Streams.
* :mod:`.store`: job state with compare-and-set transitions, in memory or in Redis.
* :mod:`.sealing`: the request and the redacted text sealed (AES-GCM envelope) at rest.
* :mod:`.webhook`: the signature scheme, :func:`verify_signature` for receivers, delivery.
* :mod:`.worker` / :mod:`.service`: the workers, and submit / read / cancel.
"""

from __future__ import annotations

from detector_orchestration.jobs.webhook import SIGNATURE_HEADER, verify_signature

__all__ = ["SIGNATURE_HEADER", "verify_signature"]
