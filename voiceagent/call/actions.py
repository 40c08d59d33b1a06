"""Side effects of the dialog, executed in order: CRM writes are committed before any word."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from voiceagent.dialog import actions as act


class CallSink(Protocol):
    """Where a call's commitments go (the CRM). Every method returns only once durable."""

    def commit(self, call_id: str, action: act.Action) -> None:
        """Durably record a promise, callback, flag, slip or transfer."""
        ...


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


class JsonlSink:
    """Appends each commitment as one JSON line and fsyncs it (the simulator's CRM stand-in)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def commit(self, call_id: str, action: act.Action) -> None:
        """Append and fsync one record."""
        record = {"call_id": call_id, "type": type(action).__name__}
        record.update({k: _jsonable(v) for k, v in asdict(action).items()})
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


WRITES = (act.RecordPromise, act.ScheduleCallback, act.RecordFlag, act.SendSlip)
"""Actions that must be committed before the call goes on."""
