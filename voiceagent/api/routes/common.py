"""Helpers shared by the routers: time ranges, row serialization, audit entries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from voiceagent.api.deps import Principal
from voiceagent.api.errors import ApiError
from voiceagent.crm.models import AuditLog
from voiceagent.crm.types import utcnow


def aware(moment: datetime | None) -> datetime | None:
    """A query-string moment as aware UTC (a naive one is read as UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_range(frm: datetime | None, to: datetime | None) -> None:
    """422 when a range ends before it starts."""
    if frm is not None and to is not None and to < frm:
        raise ApiError(422, "invalid_request", "'to' must not be before 'from'")


def row_dict(row: Any, *names: str) -> dict[str, Any]:
    """Selected attributes of an ORM row (datetimes as ISO 8601)."""
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(row, name)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def count(s: Session, query: Any) -> int:
    """Rows a query would return (for ``total``)."""
    return int(s.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


def audit(
    s: Session, who: Principal, action: str, entity: str, entity_id: str, **detail: Any
) -> None:
    """Append an audit row in the request's transaction."""
    s.add(
        AuditLog(
            at=utcnow(),
            user_id=who.user_id,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail={"user": who.name, "via": who.via, **detail},
        )
    )
