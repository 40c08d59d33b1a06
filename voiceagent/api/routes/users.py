"""Users and their secrets (admin only): create, change role, rotate or revoke a token."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field
from sqlalchemy import select

from voiceagent.api.auth import hash_password, hash_token, new_token
from voiceagent.api.deps import Admin, Db
from voiceagent.api.errors import ApiError, not_found
from voiceagent.api.routes.common import audit, row_dict
from voiceagent.crm.models import User
from voiceagent.crm.types import utcnow

router = APIRouter(prefix="/api/users", tags=["users"])
Role = Literal["operator", "supervisor", "admin"]


class NewUser(BaseModel):
    """A user to create; a token is made and returned once."""

    name: str = Field(min_length=1, max_length=100)
    role: Role
    password: str | None = Field(default=None, min_length=8)
    token_days: int | None = Field(default=None, ge=1, description="Token lifetime; none: forever")


class UserChange(BaseModel):
    """Fields to change on a user."""

    role: Role | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=8)


def _user(u: User) -> dict[str, Any]:
    out = row_dict(u, "id", "name", "role", "active", "created_at")
    out["has_token"] = u.api_token_hash is not None
    out["has_password"] = u.password_hash is not None
    return out


def issue_token(user: User, days: int | None) -> str:
    """Give a user a new API token (the old one stops working); return it."""
    token = new_token(utcnow() + timedelta(days=days) if days else None)
    user.api_token_hash = hash_token(token)
    return token


@router.get("")
def list_users(who: Admin, s: Db) -> dict[str, Any]:
    """Every user (no secrets)."""
    return {"items": [_user(u) for u in s.scalars(select(User).order_by(User.id))]}


@router.post("", status_code=201)
def create_user(who: Admin, s: Db, body: NewUser) -> dict[str, Any]:
    """Create a user; the answer's ``token`` is shown only this once."""
    if s.scalar(select(User.id).where(User.name == body.name)) is not None:
        raise ApiError(409, "conflict", f"user {body.name!r} already exists")
    user = User(
        name=body.name,
        role=body.role,
        password_hash=hash_password(body.password) if body.password else None,
        active=True,
        created_at=utcnow(),
    )
    token = issue_token(user, body.token_days)
    s.add(user)
    s.flush()
    audit(s, who, "user.create", "user", str(user.id), role=body.role)
    return {**_user(user), "token": token}


def _get(s: Db, user_id: int) -> User:
    user = s.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


@router.patch("/{user_id}")
def change_user(who: Admin, s: Db, user_id: int, body: UserChange) -> dict[str, Any]:
    """Change a user's role, password or whether they may log in."""
    user = _get(s, user_id)
    if body.role is not None:
        user.role = body.role
    if body.active is not None:
        user.active = body.active
    if body.password is not None:
        user.password_hash = hash_password(body.password)
    audit(s, who, "user.change", "user", str(user.id), **body.model_dump(exclude={"password"}))
    return _user(user)


@router.post("/{user_id}/token")
def rotate_token(
    who: Admin, s: Db, user_id: int, days: Annotated[int | None, Body(embed=True, ge=1)] = None
) -> dict[str, Any]:
    """Issue a new token (the old one is revoked); shown only this once."""
    user = _get(s, user_id)
    token = issue_token(user, days)
    audit(s, who, "user.token", "user", str(user.id))
    return {**_user(user), "token": token}


@router.delete("/{user_id}/token", status_code=204)
def revoke_token(who: Admin, s: Db, user_id: int) -> None:
    """Revoke the user's token."""
    user = _get(s, user_id)
    user.api_token_hash = None
    audit(s, who, "user.revoke", "user", str(user.id))
