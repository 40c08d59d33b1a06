"""Request dependencies: the database session, the authenticated user and the role check.

Every route declares who may call it with ``Depends(Need("supervisor"))`` (admin always may);
``tests/api/test_roles.py`` walks ``app.routes`` and fails on a route without one.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.api.auth import (
    CSRF_HEADER,
    ROLES,
    SESSION_COOKIE,
    SessionSigner,
    TokenError,
    allowed,
    check_token_fresh,
    hash_token,
)
from voiceagent.api.errors import ApiError
from voiceagent.config import Settings
from voiceagent.crm.models import User
from voiceagent.crm.types import utcnow

log = logging.getLogger(__name__)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_PAGE = 500


@dataclass(frozen=True)
class ApiConfig:
    """API settings (read from :class:`Settings`; fields it lacks take these defaults)."""

    session_secret: str
    session_max_age_s: int = 12 * 3600
    cookie_secure: bool = False
    webhook_url: str = ""
    webhook_secret: str = ""
    data_dir: Path = Path(".")

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiConfig:
        """Read ``VOICEAGENT_SESSION_SECRET`` and friends through the settings object."""
        secret = str(getattr(settings, "session_secret", "") or "")
        if not secret:
            log.warning("no session_secret set: web sessions end when the process restarts")
            secret = secrets.token_urlsafe(32)
        return cls(
            session_secret=secret,
            session_max_age_s=int(getattr(settings, "session_max_age_s", 12 * 3600)),
            cookie_secure=bool(getattr(settings, "cookie_secure", False)),
            webhook_url=str(getattr(settings, "webhook_url", "") or ""),
            webhook_secret=str(getattr(settings, "webhook_secret", "") or ""),
            data_dir=settings.data_dir,
        )


@dataclass
class ApiState:
    """What every request shares: config, database and the session signer."""

    config: ApiConfig
    engine: Engine
    sessions: sessionmaker[Session]
    signer: SessionSigner


def state(request: Request) -> ApiState:
    """The app's :class:`ApiState`."""
    found: ApiState = request.app.state.api
    return found


def get_db(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the endpoint returns, else rolled back."""
    with state(request).sessions.begin() as session:
        yield session


Db = Annotated[Session, Depends(get_db, scope="function")]
"""The request's session; committed before the response is sent (a 2xx means durable)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    name: str
    role: str
    via: str
    """``token`` or ``session``."""


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def _from_token(s: Session, token: str) -> User:
    try:
        check_token_fresh(token, utcnow())
    except TokenError as exc:
        raise _unauthorized(str(exc)) from None
    user = s.scalar(select(User).where(User.api_token_hash == hash_token(token)))
    if user is None:
        raise _unauthorized("unknown or revoked API token")
    return user


def _from_cookie(request: Request, s: Session, cookie: str) -> User:
    try:
        data = state(request).signer.load(cookie)
    except TokenError as exc:
        raise _unauthorized(str(exc)) from None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not secrets.compare_digest(sent, data.csrf):
            raise ApiError(403, "csrf", f"missing or wrong {CSRF_HEADER} header for this session")
    user = s.get(User, data.user_id)
    if user is None:
        raise _unauthorized("the session's user no longer exists; log in again")
    return user


def authenticate(request: Request, s: Session) -> Principal:
    """The caller, from ``Authorization: Bearer`` or the session cookie (401 otherwise)."""
    header = request.headers.get("Authorization", "")
    cookie = request.cookies.get(SESSION_COOKIE)
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Authorization header must be 'Bearer <token>'")
        user, via = _from_token(s, token.strip()), "token"
    elif cookie:
        user, via = _from_cookie(request, s, cookie), "session"
    else:
        raise _unauthorized("authentication required: send 'Authorization: Bearer <token>'")
    if not user.active:
        raise _unauthorized(f"user {user.name!r} is disabled")
    return Principal(user_id=user.id, name=user.name, role=user.role, via=via)


class Need:
    """Dependency: the caller must hold one of ``roles`` (admin always passes)."""

    def __init__(self, *roles: str) -> None:
        unknown = set(roles) - set(ROLES)
        if unknown or not roles:
            raise ValueError(f"roles must be some of {ROLES}, got {roles}")
        self.roles = tuple(roles)

    def __call__(self, request: Request, s: Db) -> Principal:
        """Authenticate, then check the role (403 with the roles needed)."""
        who = authenticate(request, s)
        if not allowed(who.role, self.roles):
            needed = " or ".join(
                (*self.roles, "admin") if "admin" not in self.roles else self.roles
            )
            raise ApiError(403, "forbidden", f"role {who.role!r} may not do this; needs {needed}")
        return who


ANY_ROLE = Need(*ROLES)
OPERATOR = Need("operator")
SUPERVISOR = Need("supervisor")
STAFF = Need("operator", "supervisor")
"""Operators and supervisors (accounts, lists, campaigns, calls, promises)."""
ADMIN = Need("admin")

AnyUser = Annotated[Principal, Depends(ANY_ROLE)]
Operator = Annotated[Principal, Depends(OPERATOR)]
Supervisor = Annotated[Principal, Depends(SUPERVISOR)]
Staff = Annotated[Principal, Depends(STAFF)]
Admin = Annotated[Principal, Depends(ADMIN)]


@dataclass(frozen=True, slots=True)
class PageParams:
    """``limit``/``offset`` pagination."""

    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> PageParams:
    """Pagination from the query string."""
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(page_params)]


def page(items: list[Any], total: int, params: PageParams) -> dict[str, Any]:
    """The JSON envelope of a page: items, total, limit, offset."""
    return {"items": items, "total": total, "limit": params.limit, "offset": params.offset}
