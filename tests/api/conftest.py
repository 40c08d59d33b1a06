"""API fixtures: an app over a real database (SQLite and PostgreSQL) and a user per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.crm.conftest import (  # noqa: F401  (fixtures)
    backend,
    engine,
    migrated_url,
    pg_template,
    sessions,
)
from tests.pg import postgres  # noqa: F401
from voiceagent.api.app import create_app
from voiceagent.api.auth import ROLES, hash_password, hash_token, new_token
from voiceagent.api.deps import ApiConfig
from voiceagent.config import Settings
from voiceagent.crm.models import User
from voiceagent.crm.types import utcnow

PASSWORD = "correct horse battery"
PASSWORD_HASH = hash_password(PASSWORD)
"""Hashed once: scrypt is slow on purpose."""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def app_config(data_dir: Path) -> ApiConfig:
    return ApiConfig(session_secret="test-secret", data_dir=data_dir)


@pytest.fixture
def client(engine: Engine, app_config: ApiConfig, data_dir: Path) -> Iterator[TestClient]:  # noqa: F811
    app = create_app(Settings(data_dir=data_dir), engine, config=app_config, background=False)
    with TestClient(app) as test_client:
        yield test_client


def add_user(s: Session, name: str, role: str, token: str | None = None) -> User:
    user = User(
        name=name,
        role=role,
        password_hash=PASSWORD_HASH,
        api_token_hash=hash_token(token) if token else None,
        active=True,
        created_at=utcnow(),
    )
    s.add(user)
    s.flush()
    return user


@pytest.fixture
def tokens(sessions: sessionmaker[Session]) -> dict[str, str]:  # noqa: F811
    """One user per role (named after it), each with a fresh token; role -> token."""
    out = {role: new_token() for role in ROLES}
    with sessions.begin() as s:
        for role, token in out.items():
            add_user(s, role, role, token)
    return out


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
