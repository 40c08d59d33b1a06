"""Call recordings: the WAV streamed with HTTP Range support; every access is audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from voiceagent.api.deps import Db, Supervisor
from voiceagent.api.errors import ApiError
from voiceagent.api.routes.calls import get_call, stored_file
from voiceagent.api.routes.common import audit

router = APIRouter(prefix="/api/calls", tags=["recordings"])
CHUNK_BYTES = 64 << 10
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span of a single-range ``Range`` header, ``None`` without one.

    Raises:
        ApiError: 416 for a range that is malformed, multi-part or outside the file.
    """
    if not header:
        return None
    found = _RANGE.match(header.strip())
    unsatisfiable = ApiError(
        416,
        "range_not_satisfiable",
        f"cannot serve range {header!r} of a {size}-byte file (one bytes=a-b range only)",
        headers={"Content-Range": f"bytes */{size}"},
    )
    if found is None or found.group(1) == found.group(2) == "":
        raise unsatisfiable
    first, last = found.group(1), found.group(2)
    if first == "":  # suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        raise unsatisfiable
    return start, end


def _chunks(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = f.read(min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


@router.get("/{call_id}/recording", response_class=StreamingResponse)
def recording(who: Supervisor, request: Request, s: Db, call_id: str) -> StreamingResponse:
    """The stereo WAV (debtor left, agent right); honours ``Range: bytes=a-b``."""
    call = get_call(s, call_id)
    path = stored_file(request, call.recording_path, "recording", call_id)
    size = path.stat().st_size
    span = parse_range(request.headers.get("Range"), size)
    start, end = span if span is not None else (0, size - 1)
    audit(s, who, "recording.read", "call", call_id, range=f"{start}-{end}", size=size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start + 1),
        "Cache-Control": "private, no-store",
    }
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        _chunks(path, start, end), status_code=status, media_type="audio/wav", headers=headers
    )
