from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.db.support import BACKENDS, empty_engine


@pytest.fixture(params=BACKENDS)
async def blank_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty (never migrated) database of each backend."""
    async with empty_engine(request.param, tmp_path) as engine:
        yield engine
