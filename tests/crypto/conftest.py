"""The real OpenBao dev server of the secrets tests, for the transit KEK tests."""

from __future__ import annotations

from tests.secrets.conftest import openbao, unique

__all__ = ["openbao", "unique"]
