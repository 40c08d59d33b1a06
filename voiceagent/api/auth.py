"""Secrets: API tokens (SHA-256 stored), passwords (scrypt) and signed session cookies.

A token reads ``va1.<expiry>.<random>``: the expiry (Unix seconds, ``0`` for none) is part of
the secret that is hashed, so it cannot be changed without the hash no longer matching, and an
expired token is refused without any extra column in the ``users`` table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

ROLES = ("operator", "supervisor", "admin")
"""Every role; ``admin`` may do everything."""
TOKEN_PREFIX = "va1"
SESSION_COOKIE = "voiceagent_session"
CSRF_HEADER = "X-CSRF-Token"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class TokenError(ValueError):
    """A token that is malformed or expired (the message says which)."""


def new_token(expires_at: datetime | None = None) -> str:
    """A fresh API token, valid until ``expires_at`` (aware) or forever."""
    expiry = 0 if expires_at is None else int(expires_at.timestamp())
    return f"{TOKEN_PREFIX}.{expiry}.{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token (what ``users.api_token_hash`` stores)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_expiry(token: str) -> datetime | None:
    """The expiry written in a token, or ``None`` if it never expires.

    Raises:
        TokenError: The token is not of the form ``va1.<expiry>.<random>``.
    """
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1].isdigit() or not parts[2]:
        raise TokenError("malformed API token (expected va1.<expiry>.<secret>)")
    expiry = int(parts[1])
    return None if expiry == 0 else datetime.fromtimestamp(expiry, UTC)


def check_token_fresh(token: str, now: datetime) -> None:
    """Raise :class:`TokenError` if the token is malformed or expired at ``now``."""
    expiry = token_expiry(token)
    if expiry is not None and expiry <= now:
        raise TokenError(f"API token expired at {expiry.isoformat()}")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64) of a password."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    b64 = base64.b64encode
    params = f"{_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}"
    return f"scrypt${params}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (constant time)."""
    if not stored:
        return False
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        found = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, base64.b64decode(digest))


def allowed(role: str, roles: tuple[str, ...]) -> bool:
    """Whether a user of ``role`` may use an endpoint open to ``roles`` (admin always may)."""
    return role == "admin" or role in roles


@dataclass(frozen=True, slots=True)
class SessionData:
    """What the signed session cookie carries."""

    user_id: int
    csrf: str
    """Echoed by the browser in the ``X-CSRF-Token`` header on unsafe requests."""


class SessionSigner:
    """Signs and checks session cookies (itsdangerous, HMAC-SHA1 over a secret)."""

    def __init__(self, secret: str, max_age_s: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="voiceagent-session")
        self.max_age_s = max_age_s

    def dump(self, user_id: int) -> tuple[str, SessionData]:
        """A cookie value for a user, and the session it carries."""
        data = SessionData(user_id=user_id, csrf=secrets.token_urlsafe(24))
        return self._serializer.dumps({"uid": user_id, "csrf": data.csrf}), data

    def load(self, cookie: str) -> SessionData:
        """The session in a cookie.

        Raises:
            TokenError: The cookie is expired or its signature is wrong.
        """
        try:
            raw: Any = self._serializer.loads(cookie, max_age=self.max_age_s)
        except SignatureExpired:
            raise TokenError("session expired; log in again") from None
        except BadSignature:
            raise TokenError("invalid session cookie; log in again") from None
        return SessionData(user_id=int(raw["uid"]), csrf=str(raw["csrf"]))
