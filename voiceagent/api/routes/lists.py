"""Call lists: uploaded files, their rows and the errors of rejected rows."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from sqlalchemy import select

from voiceagent.api.deps import Db, Operator, Paging, Staff, page, state
from voiceagent.api.errors import ApiError, not_found
from voiceagent.api.routes.common import audit, count, row_dict
from voiceagent.crm.models import CallList, CallListRow

router = APIRouter(prefix="/api/lists", tags=["call lists"])
LIST_FIELDS = (
    "id",
    "portfolio_id",
    "name",
    "filename",
    "sha256",
    "uploaded_by",
    "row_count",
    "rejected_count",
    "status",
    "created_at",
)
MAX_UPLOAD_BYTES = 512 << 20
SUFFIXES = (".csv", ".xlsx", ".txt")


@router.get("")
def list_lists(
    who: Staff, s: Db, paging: Paging, portfolio_id: int | None = None
) -> dict[str, Any]:
    """Uploaded call lists, newest first."""
    query = select(CallList)
    if portfolio_id is not None:
        query = query.where(CallList.portfolio_id == portfolio_id)
    rows = s.scalars(query.order_by(CallList.id.desc()).limit(paging.limit).offset(paging.offset))
    return page([row_dict(c, *LIST_FIELDS) for c in rows], count(s, query), paging)


@router.get("/{list_id}")
def get_list(who: Staff, s: Db, list_id: int) -> dict[str, Any]:
    """One call list."""
    found = s.get(CallList, list_id)
    if found is None:
        raise not_found("call list", list_id)
    return row_dict(found, *LIST_FIELDS)


@router.get("/{list_id}/rows")
def list_rows(
    who: Staff, s: Db, list_id: int, paging: Paging, errors_only: bool = False
) -> dict[str, Any]:
    """The rows of a list as uploaded, with the account each became or its error."""
    if s.get(CallList, list_id) is None:
        raise not_found("call list", list_id)
    query = select(CallListRow).where(CallListRow.call_list_id == list_id)
    if errors_only:
        query = query.where(CallListRow.error.is_not(None))
    rows = s.scalars(query.order_by(CallListRow.line_no).limit(paging.limit).offset(paging.offset))
    items = [row_dict(r, "line_no", "raw", "account_id", "error") for r in rows]
    return page(items, count(s, query), paging)


@router.post("", status_code=201)
def upload_list(
    who: Operator,
    request: Request,
    s: Db,
    file: UploadFile,
    campaign: Annotated[str, Form(min_length=1, max_length=200)],
    creditor: Annotated[str, Form(max_length=200)] = "default",
    portfolio: Annotated[str, Form(max_length=200)] = "default",
    region: Annotated[str | None, Form(min_length=2, max_length=2)] = None,
) -> dict[str, Any]:
    """Upload a CSV/XLSX call list into a campaign (created as a draft if missing)."""
    from voiceagent.dialer.importer import import_list
    from voiceagent.dialer.readers import ListFormatError

    name = Path(file.filename or "list.csv").name
    if not name.lower().endswith(SUFFIXES):
        raise ApiError(422, "invalid_request", f"{name!r}: expected a .csv or .xlsx file")
    with tempfile.TemporaryDirectory(prefix="voiceagent-upload-") as tmp:
        path = Path(tmp) / name
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise ApiError(413, "too_large", f"{name!r} is over {MAX_UPLOAD_BYTES >> 20} MiB")
        try:
            result = import_list(
                state(request).engine,
                path,
                campaign,
                region=region,
                creditor=creditor,
                portfolio=portfolio,
                error_file=Path(tmp) / "errors.csv",
            )
        except ListFormatError as exc:
            raise ApiError(422, "bad_list", str(exc)) from None
    audit(s, who, "list.upload", "call_list", str(result.call_list_id), filename=name)
    return {
        "call_list_id": result.call_list_id,
        "campaign_id": result.campaign_id,
        **result.summary(),
    }
