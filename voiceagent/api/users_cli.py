"""``voiceagent users``: create users and issue, rotate or revoke their API tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from voiceagent.api.auth import ROLES, hash_password, hash_token, new_token
from voiceagent.crm.models import User
from voiceagent.crm.types import utcnow

users_app = typer.Typer(help="API and dashboard users.", no_args_is_help=True)

UrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: VOICEAGENT_DATABASE_URL)."),
]
DaysOption = Annotated[
    int | None, typer.Option("--days", min=1, help="Token lifetime in days (default: no expiry).")
]


@contextmanager
def _session(url: str | None) -> Iterator[Session]:
    from voiceagent.config import get_settings
    from voiceagent.crm.db import make_engine, session_factory

    engine = make_engine(url or get_settings().resolved_database_url())
    try:
        with session_factory(engine).begin() as s:
            yield s
    finally:
        engine.dispose()


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _token(user: User, days: int | None) -> str:
    token = new_token(utcnow() + timedelta(days=days) if days else None)
    user.api_token_hash = hash_token(token)
    return token


def _find(s: Session, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        _fail(f"no user {name!r}")
    assert user is not None
    return user


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option("--role", help="operator, supervisor or admin.")],
    password: Annotated[
        bool, typer.Option("--password", help="Also ask for a password (web login).")
    ] = False,
    days: DaysOption = None,
    database_url: UrlOption = None,
) -> None:
    """Create a user and print their API token (shown only this once)."""
    if role not in ROLES:
        _fail(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    secret = None
    if password:
        secret = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        if len(secret) < 8:
            _fail("a password needs at least 8 characters")
    with _session(database_url) as s:
        if s.scalar(select(User.id).where(User.name == name)) is not None:
            _fail(f"user {name!r} already exists")
        user = User(
            name=name,
            role=role,
            password_hash=hash_password(secret) if secret else None,
            active=True,
            created_at=utcnow(),
        )
        token = _token(user, days)
        s.add(user)
    typer.echo(f"user {name!r} ({role}) created; API token (shown once):")
    typer.echo(token)


@users_app.command("token")
def rotate(
    name: Annotated[str, typer.Argument(help="Login name.")],
    days: DaysOption = None,
    database_url: UrlOption = None,
) -> None:
    """Issue a new token for a user (the old one stops working) and print it once."""
    with _session(database_url) as s:
        token = _token(_find(s, name), days)
    typer.echo(token)


@users_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Login name.")], database_url: UrlOption = None
) -> None:
    """Revoke a user's API token."""
    with _session(database_url) as s:
        _find(s, name).api_token_hash = None
    typer.echo(f"token of {name!r} revoked")


@users_app.command("list")
def list_users(database_url: UrlOption = None) -> None:
    """List users, their roles and whether they hold a token."""
    with _session(database_url) as s:
        for user in s.scalars(select(User).order_by(User.name)):
            token = "token" if user.api_token_hash else "no token"
            state = "active" if user.active else "disabled"
            typer.echo(f"{user.name}\t{user.role}\t{state}\t{token}")
