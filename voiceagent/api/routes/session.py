"""Web login: a signed, HttpOnly, SameSite=Lax session cookie (the API also takes tokens)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select

from voiceagent.api.auth import CSRF_HEADER, SESSION_COOKIE, verify_password
from voiceagent.api.deps import AnyUser, Db, state
from voiceagent.api.errors import ApiError
from voiceagent.crm.models import User

router = APIRouter(prefix="/api/session", tags=["session"])
PUBLIC = {("POST", "/api/session")}
"""Routes anyone may call (logging in)."""


@router.post("")
def login(
    request: Request,
    response: Response,
    s: Db,
    name: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> dict[str, Any]:
    """Log in with a name and password (form fields); sets the session cookie.

    The answer carries ``csrf_token``: send it as the ``X-CSRF-Token`` header on every
    POST/PUT/PATCH/DELETE made with the cookie.
    """
    user = s.scalar(select(User).where(User.name == name))
    if user is None or not user.active or not verify_password(password, user.password_hash):
        raise ApiError(401, "unauthorized", "wrong user name or password")
    api = state(request)
    cookie, data = api.signer.dump(user.id)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=api.config.session_max_age_s,
        httponly=True,
        samesite="lax",
        secure=api.config.cookie_secure,
        path="/",
    )
    return {"user": user.name, "role": user.role, "csrf_token": data.csrf}


@router.get("")
def whoami(who: AnyUser, request: Request) -> dict[str, Any]:
    """The caller: name, role, and how they authenticated."""
    out: dict[str, Any] = {"user": who.name, "role": who.role, "via": who.via}
    cookie = request.cookies.get(SESSION_COOKIE)
    if who.via == "session" and cookie:
        out["csrf_token"] = state(request).signer.load(cookie).csrf
    return out


@router.delete("", status_code=204)
def logout(who: AnyUser, response: Response) -> Response:
    """Log out (clears the cookie; needs the ``X-CSRF-Token`` header with a cookie)."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    response.status_code = 204
    return response


__all__ = ["CSRF_HEADER", "PUBLIC", "router"]
