"""Write validated call-list batches into the CRM tables at bulk speed, a transaction a batch.

Accounts are deduplicated the way :func:`voiceagent.crm.repo.upsert_account` does it
(portfolio + external reference, else portfolio + document) and refreshed when a re-upload
changes them. New rows go in through the driver's fastest path: ``executemany`` on SQLite
(a C loop in ``sqlite3``) and ``COPY`` on PostgreSQL; account ids are allocated up front
(PostgreSQL: from the sequence; SQLite: after ``max(id)``, read in each batch's transaction,
which holds the database's write lock from its ``BEGIN IMMEDIATE``), so no ``RETURNING`` round
trip is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from voiceagent.crm import repo
from voiceagent.crm.models import Account, CallList, Campaign
from voiceagent.crm.types import utcnow
from voiceagent.dialer.rows import AccountValues, BadRow, GoodRow

ACCOUNTS = cast(Table, Account.__table__)
IN_CHUNK = 5_000
"""Values per ``IN (...)`` list (SQLite allows 32,766 parameters per statement)."""
AUTO_DIALPLAN = "auto"
"""``Campaign.dialplan_id`` of a campaign made by an upload: routed per account."""
_ACCOUNT_COLUMNS: tuple[str, ...] = ("id", "portfolio_id", *AccountValues._fields, "status")
_ACCOUNT_COLUMNS += ("created_at", "updated_at")
_PHONE_COLUMNS = ("account_id", "e164", "type", "consent", "priority", "created_at")
_ROW_COLUMNS = ("call_list_id", "line_no", "raw", "account_id", "error")


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that was not imported."""

    line: int
    reason: str


@dataclass(slots=True)
class ImportResult:
    """What an upload did."""

    call_list_id: int
    campaign_id: int = 0
    imported: int = 0
    """Records that created an account."""
    duplicates: int = 0
    """Records whose account already existed (in the database or earlier in the file)."""
    rejected: list[Rejection] = field(default_factory=list)
    error_file: Path | None = None
    """CSV of the rejected records (line, reason, original fields), if any."""

    def summary(self) -> dict[str, Any]:
        """``{"imported": n, "duplicates": n, "rejected": [{"line": n, "reason": s}]}``."""
        rejected = [{"line": r.line, "reason": r.reason} for r in self.rejected]
        return {"imported": self.imported, "duplicates": self.duplicates, "rejected": rejected}


@dataclass(slots=True)
class _Known:
    """An account matched or created in the current batch."""

    id: int
    values: AccountValues
    stored: bool
    """Already in the database (so a change is an UPDATE)."""


def _insert_sql(table: str, columns: tuple[str, ...], suffix: str = "") -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){suffix}"


class BulkWriter:
    """Writes the batches of one upload, each in its own transaction.

    ``begin`` creates the list (``importing``), ``write`` adds one batch, ``finish`` marks it
    ``ready`` and links the campaign, ``fail`` marks it ``failed``; each in the session (and
    transaction) it is given. A batch holds SQLite's write lock for well under a second, so a
    live call can commit a promise in the middle of a million-row upload.
    """

    def __init__(self, creditor: str, portfolio: str, path: Path, sha256: str) -> None:
        self.creditor = creditor
        self.portfolio_name = portfolio
        self.path = path
        self.sha256 = sha256
        self.portfolios: dict[str | None, int] = {}
        self.result = ImportResult(call_list_id=0)
        self._next_id = 0

    def begin(self, s: Session) -> int:
        """Create the call list, ``importing``; its id."""
        self.portfolios[None] = repo.portfolio(s, self.creditor, self.portfolio_name).id
        call_list = CallList(
            portfolio_id=self.portfolios[None],
            name=self.path.name[-200:],
            filename=self.path.name[-255:],
            sha256=self.sha256,
            status="importing",
            created_at=utcnow(),
        )
        s.add(call_list)
        s.flush()
        self.result.call_list_id = call_list.id
        return call_list.id

    def _bind(self, s: Session) -> None:
        """Use the transaction of ``s`` for the next batch."""
        self.s = s
        self.conn = s.connection()
        self.dialect = self.conn.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise NotImplementedError(
                f"bulk import supports SQLite and PostgreSQL, not {self.dialect}"
            )
        self.dbapi: Any = self.conn.connection.driver_connection
        assert self.dbapi is not None
        self._stamp = _sqlite_stamp if self.dialect == "sqlite" else (lambda v: v)
        if self.dialect == "sqlite":  # the transaction holds the write lock (BEGIN IMMEDIATE)
            self._next_id = int(self.conn.scalar(select(func.max(ACCOUNTS.c.id))) or 0)
        else:
            columns = "account_id int, e164 text, type text, consent bool, priority int"
            self.dbapi.execute(
                f"CREATE TEMP TABLE import_phones ({columns}, created_at timestamptz) "
                "ON COMMIT DROP"
            )

    def _portfolio(self, name: str | None) -> int:
        if name not in self.portfolios:
            self.portfolios[name] = repo.portfolio(self.s, self.creditor, str(name)).id
        return self.portfolios[name]

    def _ids(self, count: int) -> list[int]:
        if self.dialect == "sqlite":
            start, self._next_id = self._next_id + 1, self._next_id + count
            return list(range(start, start + count))
        rows = self.dbapi.execute(
            "SELECT nextval(pg_get_serial_sequence('accounts', 'id')) FROM generate_series(1, %s)",
            (count,),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def write(self, s: Session, batch: list[GoodRow | BadRow]) -> None:
        """Write one batch: accounts, phones and the list's rows, and the list's counts."""
        self._bind(s)
        now = self._stamp(utcnow())
        groups: dict[int, list[GoodRow]] = {}
        for row in batch:
            if isinstance(row, GoodRow):
                groups.setdefault(self._portfolio(row.portfolio), []).append(row)
        account_of: dict[int, int] = {}
        phones = []
        for portfolio_id, rows in groups.items():
            for row, account_id in zip(rows, self._accounts(portfolio_id, rows, now), strict=True):
                account_of[row.line_no] = account_id
                phones.append((account_id, row.e164, row.phone_type, False, 0, now))
        list_id = self.result.call_list_id
        list_rows = []
        rejected = 0
        for row in batch:
            error = row.reason if isinstance(row, BadRow) else None
            if error is not None:
                self.result.rejected.append(Rejection(row.line_no, error))
                rejected += 1
            list_rows.append((list_id, row.line_no, row.raw, account_of.get(row.line_no), error))
        self.conn.execute(
            update(CallList)
            .where(CallList.id == list_id)
            .values(
                row_count=CallList.row_count + len(batch),
                rejected_count=CallList.rejected_count + rejected,
            )
        )
        if self.dialect == "sqlite":
            conflict = " ON CONFLICT (account_id, e164) DO NOTHING"
            self.dbapi.executemany(_insert_sql("phones", _PHONE_COLUMNS, conflict), phones)
            self.dbapi.executemany(_insert_sql("call_list_rows", _ROW_COLUMNS), list_rows)
        else:
            self._copy("import_phones", _PHONE_COLUMNS, phones)
            cols = ", ".join(_PHONE_COLUMNS)
            self.dbapi.execute(
                f"INSERT INTO phones ({cols}) SELECT {cols} FROM import_phones "
                "ON CONFLICT (account_id, e164) DO NOTHING"
            )
            self.dbapi.execute("TRUNCATE import_phones")
            self._copy("call_list_rows", _ROW_COLUMNS, list_rows)

    def _copy(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        with self.dbapi.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def _accounts(self, portfolio_id: int, rows: list[GoodRow], now: Any) -> list[int]:
        """Account id of each row: matched (and refreshed if changed) or newly inserted."""
        by_ref, by_doc = self._existing(portfolio_id, rows)
        new: list[_Known] = []
        changed: dict[int, _Known] = {}
        targets: list[_Known] = []
        for row in rows:
            values = row.account
            doc = values.document_number
            known = by_ref.get(values.external_ref) or (by_doc.get(doc) if doc else None)
            if known is None:
                known = _Known(0, values, stored=False)
                new.append(known)
                by_ref[values.external_ref] = known
                if doc:
                    by_doc.setdefault(doc, known)
                self.result.imported += 1
            else:
                self.result.duplicates += 1
                # Matched by document: the account keeps its own reference.
                values = values._replace(external_ref=known.values.external_ref)
                if not _same(values, known.values):
                    known.values = values
                    if known.stored:
                        changed[known.id] = known
            targets.append(known)
        if new:
            for known, account_id in zip(new, self._ids(len(new)), strict=True):
                known.id = account_id
            records = [(k.id, portfolio_id, *k.values, "active", now, now) for k in new]
            if self.dialect == "sqlite":
                self.dbapi.executemany(_insert_sql("accounts", _ACCOUNT_COLUMNS), records)
            else:
                self._copy("accounts", _ACCOUNT_COLUMNS, records)
        if changed:
            params: dict[str, Any] = {c: bindparam(c) for c in AccountValues._fields}
            params["updated_at"] = bindparam("now_")
            statement = update(ACCOUNTS).where(ACCOUNTS.c.id == bindparam("id_")).values(params)
            stamp = utcnow()
            self.conn.execute(
                statement,
                [
                    {
                        **k.values._asdict(),
                        "extra": json.loads(k.values.extra),
                        "id_": k.id,
                        "now_": stamp,
                    }
                    for k in changed.values()
                ],
            )
        return [k.id for k in targets]

    def _existing(
        self, portfolio_id: int, rows: list[GoodRow]
    ) -> tuple[dict[str, _Known], dict[str, _Known]]:
        """Accounts of the portfolio already stored under the batch's references or documents."""
        refs = sorted({r.account.external_ref for r in rows})
        docs = sorted({r.account.document_number for r in rows if r.account.document_number})
        columns = ", ".join(("id", *AccountValues._fields))
        by_ref: dict[str, _Known] = {}
        by_doc: dict[str, _Known] = {}
        for key, wanted in (("external_ref", refs), ("document_number", docs)):
            for start in range(0, len(wanted), IN_CHUNK):
                chunk = wanted[start : start + IN_CHUNK]
                # Plain driver SQL: compiling an expanding IN of 5,000 values costs more than
                # the lookup itself.
                if self.dialect == "sqlite":
                    marks = ", ".join("?" for _ in chunk)
                    where, params = f"= ? AND {key} IN ({marks})", [portfolio_id, *chunk]
                else:
                    where, params = f"= %s AND {key} = ANY(%s)", [portfolio_id, chunk]
                query = f"SELECT {columns} FROM accounts WHERE portfolio_id {where} ORDER BY id"
                for found in self.dbapi.execute(query, params).fetchall():
                    extra = (
                        found[-1]
                        if isinstance(found[-1], str)
                        else json.dumps(found[-1], ensure_ascii=False)
                    )
                    values = AccountValues._make((*found[1:-1], extra))
                    known = by_ref.setdefault(values.external_ref, _Known(found[0], values, True))
                    if values.document_number:
                        by_doc.setdefault(values.document_number, known)
        return by_ref, by_doc

    def finish(self, s: Session, campaign: str) -> ImportResult:
        """Mark the list ``ready`` and link it to the campaign (created, as a draft, if missing)."""
        result = self.result
        call_list = s.get_one(CallList, result.call_list_id)
        call_list.status = "ready"
        call_list.row_count = result.imported + result.duplicates + len(result.rejected)
        call_list.rejected_count = len(result.rejected)
        found = s.scalars(
            select(Campaign).where(Campaign.name == campaign).order_by(Campaign.id)
        ).first()
        now = utcnow()
        if found is None:
            found = Campaign(
                name=campaign,
                call_list_id=call_list.id,
                dialplan_id=AUTO_DIALPLAN,
                dialplan_version="",
                schedule={},
                max_channels=1,
                retry_policy={},
                priority=0,
                status="draft",
                created_at=now,
                updated_at=now,
            )
            s.add(found)
        else:
            found.call_list_id, found.updated_at = call_list.id, now
        s.flush()
        result.campaign_id = found.id
        return result

    def fail(self, s: Session) -> None:
        """Mark the list ``failed`` (what was written stays; no campaign dials it)."""
        if self.result.call_list_id:
            s.execute(
                update(CallList)
                .where(CallList.id == self.result.call_list_id)
                .values(status="failed")
            )


def _sqlite_stamp(at: datetime) -> str:
    """A UTC timestamp as SQLAlchemy stores it in SQLite (what ``UtcDateTime`` reads back)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _same(a: AccountValues, b: AccountValues) -> bool:
    return a[:-1] == b[:-1] and (a.extra == b.extra or json.loads(a.extra) == json.loads(b.extra))
