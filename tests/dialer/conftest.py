"""Dialer fixtures: the CRM's databases, on SQLite and on a real PostgreSQL (tests/crm)."""

from __future__ import annotations

from tests.crm.conftest import (  # noqa: F401  (fixtures, found by name)
    account,
    backend,
    engine,
    migrated_url,
    pg_template,
    sessions,
)
from tests.pg import postgres  # noqa: F401  (the session-scoped fixture)
