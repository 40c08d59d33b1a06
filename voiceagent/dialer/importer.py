"""Import a call list (CSV/XLSX) into the CRM in bulk, a transaction per batch.

The list is ``importing`` while its batches are written (each batch commits on its own, so a
live call never waits long for the database) and becomes ``ready``, linked to its campaign,
at the end; an upload that fails is marked ``failed`` and never dialled. Uploading the file
again completes it: what the failed attempt wrote counts as duplicates.

Each record becomes a call-list row (its line number and raw values, with the account it
became or the reason it did not); good records create or refresh an account, deduplicated
the way :func:`voiceagent.crm.repo.upsert_account` does it (portfolio + external reference,
else portfolio + document), and add their phone. Batches are written by
:class:`~voiceagent.dialer.bulk.BulkWriter`, never the ORM per row: a million rows must
import in under a minute. Large files are validated in worker processes while this one writes.
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import phonenumbers
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.crm.db import write_session
from voiceagent.crm.models import Campaign
from voiceagent.dialer.bulk import BulkWriter, ImportResult, Rejection
from voiceagent.dialer.readers import Cell, ListFormatError, ListReader, open_list
from voiceagent.dialer.rows import (
    BadRow,
    GoodRow,
    Packed,
    RowParser,
    map_columns,
    parse_batch,
    parse_batch_packed,
    unpack_batch,
)

__all__ = ["ImportResult", "Rejection", "default_error_file", "import_list"]

BATCH_ROWS = 10_000
PARALLEL_MIN_BYTES = 4 << 20
"""Files smaller than this are validated in this process (workers take ~1 s to start)."""

Progress = Callable[[int, int], None]
"""Called with (units done, units in total) after each batch."""


def default_error_file(path: Path) -> Path:
    """Where the error report of ``path`` goes unless told otherwise."""
    return path.with_name(f"{path.stem}.errors.csv")


def import_list(
    engine: Engine,
    path: Path,
    campaign: str,
    *,
    region: str | None = None,
    mapping: Mapping[str, str] | None = None,
    creditor: str = "default",
    portfolio: str = "default",
    error_file: Path | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportResult:
    """Import a call list and link it to a campaign (created, as a draft, if missing).

    Args:
        engine: A migrated CRM database.
        path: The CSV or XLSX file.
        campaign: Campaign name.
        region: Default country (ISO 3166 alpha-2) of numbers without a country code; if not
            given, the campaign's jurisdiction when it exists and has one.
        mapping: Column name -> field, for columns not named like the fields.
        creditor: Creditor owning the portfolios.
        portfolio: Portfolio of rows that name none.
        error_file: Where to write rejected records (default: ``<stem>.errors.csv`` beside
            ``path``); written only when a record is rejected.
        progress: Progress callback.
        workers: Validation processes beside this one (which reads and writes); default:
            one per CPU for files over 4 MiB, none (validate here) for smaller ones.
        batch_rows: Records per batch.

    Raises:
        ListFormatError: The file cannot be read, or a required column is missing.
    """
    reader = open_list(path)
    try:
        region = region or _campaign_region(engine, campaign)
        parser = RowParser(map_columns(reader.header, mapping), region.upper() if region else None)
        if workers is None:
            workers = (os.cpu_count() or 1) if reader.total >= PARALLEL_MIN_BYTES else 0
        errors_path = error_file or default_error_file(path)
        _check_writable(errors_path)
        sessions = sessionmaker(bind=engine)
        writer = BulkWriter(creditor, portfolio, path, reader.sha256)
        with write_session(sessions) as s:
            writer.begin(s)
        try:
            with _ErrorFile(errors_path, reader) as errors:
                for batch in _parsed(reader, parser, batch_rows, workers):
                    with write_session(sessions) as s:
                        writer.write(s, batch)
                    errors.write(r for r in batch if isinstance(r, BadRow))
                    if progress is not None:
                        progress(reader.done(), reader.total)
            with write_session(sessions) as s:
                result = writer.finish(s, campaign)
        except BaseException:
            with contextlib.suppress(Exception), write_session(sessions) as s:
                writer.fail(s)
            raise
        result.error_file = errors_path if result.rejected else None
        return result
    finally:
        reader.close()


def _campaign_region(engine: Engine, name: str) -> str | None:
    """The default region of a campaign: its jurisdiction, when that is a country.

    The campaign is the one the list will be linked to, as ``BulkWriter.finish`` finds it.
    """
    query = select(Campaign.jurisdiction).where(Campaign.name == name)
    with Session(engine) as s:
        found = s.scalar(query.order_by(Campaign.id).limit(1))
    return found if found in phonenumbers.SUPPORTED_REGIONS else None


def _check_writable(path: Path) -> None:
    """Refuse an error report that could not be written, before anything is imported."""
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        problem = "no such folder" if not folder.is_dir() else "folder not writable"
        raise ListFormatError(
            f"cannot write the error report {path}: {problem} (nothing was imported)"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise ListFormatError(
            f"cannot write the error report {path}: not writable (nothing was imported)"
        )


def _chunks(records: Iterator[tuple[int, list[Cell]]], size: int) -> Iterator[list[Any]]:
    while batch := list(islice(records, size)):
        yield batch


def _parsed(
    reader: ListReader, parser: RowParser, batch_rows: int, workers: int
) -> Iterator[list[GoodRow | BadRow]]:
    """Validated batches, in file order; with workers, a few batches run ahead."""
    batches = _chunks(reader.records(), batch_rows)
    if workers < 1:
        for batch in batches:
            yield parse_batch(parser, batch)
        return
    # spawn, not fork: the parent holds database connections that a child must not share.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque[Future[Packed]] = deque()
        for batch in batches:
            pending.append(pool.submit(parse_batch_packed, parser, batch))
            if len(pending) > 2 * workers:
                yield unpack_batch(pending.popleft().result())
        while pending:
            yield unpack_batch(pending.popleft().result())


class _ErrorFile:
    """The rejected records as CSV (line, reason, original fields), opened on first use."""

    def __init__(self, path: Path, reader: ListReader) -> None:
        self.path = path
        self.header = reader.header
        self.delimiter = reader.delimiter
        self._file: TextIO | None = None
        self._csv: Any = None

    def __enter__(self) -> _ErrorFile:
        return self

    def write(self, rows: Iterable[BadRow]) -> None:
        for row in rows:
            if self._csv is None:
                # utf-8-sig: spreadsheet programs then read accents right.
                self._file = self.path.open("w", encoding="utf-8-sig", newline="")
                self._csv = csv.writer(self._file, delimiter=self.delimiter)
                self._csv.writerow(["line", "reason", *self.header])
            self._csv.writerow([row.line_no, row.reason, *row.values])

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._file is not None:
            self._file.close()
