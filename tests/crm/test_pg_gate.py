"""A missing PostgreSQL skips locally but fails in CI (VOICEAGENT_REQUIRE_MODELS=1)."""

from __future__ import annotations

import pytest

from tests import model_gate, pg


def test_missing_postgres_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg, "find_bindir", lambda: None)
    monkeypatch.setattr(model_gate, "REQUIRED", True)
    with pytest.raises(pytest.fail.Exception, match="forbids skipping"):
        pg.require_bindir()
    monkeypatch.setattr(model_gate, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL"):
        pg.require_bindir()
