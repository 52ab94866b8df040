"""Evidence from the command line: `mapper map` and `mapper batch` append events too.

The CLI owns no server loop, so one ``asyncio.Runner`` carries the engine's connections
across the synchronous calls; events are committed before the command reports success.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType

from llama_mapper.audit import EventStore, MappingEvent
from llama_mapper.audit.evidence import Fingerprinter
from llama_mapper.config.settings import Settings
from llama_mapper.runtime import secret_provider
from llama_mapper.storage.db.engine import create_engine, database_url
from llama_mapper.storage.db.migrate import upgrade


class CliEvidence:
    def __init__(self, settings: Settings) -> None:
        secrets = secret_provider(settings)
        self.fingerprint = Fingerprinter(secrets, settings.audit.fingerprint_secret)
        self._runner = asyncio.Runner()
        self._engine = create_engine(database_url(settings, secrets))
        if settings.database.auto_migrate:
            self._runner.run(upgrade(self._engine))
        self._store = EventStore(self._engine)

    @classmethod
    def open(cls, settings: Settings) -> CliEvidence | None:
        return cls(settings) if settings.audit.enabled else None

    def record(self, events: Sequence[MappingEvent]) -> None:
        if events:
            self._runner.run(self._store.append(events))

    def close(self) -> None:
        self._runner.run(self._engine.dispose())
        self._runner.close()

    def __enter__(self) -> CliEvidence:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
