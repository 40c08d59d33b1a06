"""The call-centre figures of :mod:`voiceagent.reporting`, grouped and over a time range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from voiceagent import reporting
from voiceagent.api.deps import Db, Supervisor
from voiceagent.api.errors import ApiError
from voiceagent.api.routes.common import aware, check_range

router = APIRouter(prefix="/api/metrics", tags=["metrics"])
MAX_RANGE = timedelta(days=400)


@router.get("")
def metrics(
    who: Supervisor,
    s: Db,
    frm: Annotated[datetime, Query(alias="from", description="Dials from (UTC if naive)")],
    to: Annotated[datetime, Query(description="Dials before (UTC if naive)")],
    group_by: Annotated[
        str, Query(description=f"Comma-separated, of: {', '.join(reporting.GROUPS)}")
    ] = "",
    campaign_id: int | None = None,
    portfolio_id: int | None = None,
    as_of: Annotated[date | None, Query(description="Judge promises due before this day")] = None,
) -> dict[str, Any]:
    """Attempts, contact rate, CPC, TMA, TMO, promises, kept rate... (docs/metrics.md)."""
    start, end = aware(frm), aware(to)
    assert start is not None and end is not None
    check_range(start, end)
    if end - start > MAX_RANGE:
        raise ApiError(422, "invalid_request", f"range over {MAX_RANGE.days} days; split it")
    groups = tuple(g.strip() for g in group_by.split(",") if g.strip())
    unknown = [g for g in groups if g not in reporting.GROUPS]
    if unknown:
        raise ApiError(
            422,
            "invalid_request",
            f"unknown group_by {', '.join(unknown)}; use {', '.join(reporting.GROUPS)}",
        )
    day = as_of or datetime.now(UTC).date()
    rows = reporting.compute(
        s, start, end, groups, campaign_id=campaign_id, portfolio_id=portfolio_id, as_of=day
    )
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "group_by": list(groups),
        "as_of": day.isoformat(),
        "rows": [r.as_dict() for r in rows],
    }
