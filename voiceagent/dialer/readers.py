"""Read an uploaded call list (CSV in any common dialect and encoding, or XLSX) as numbered rows.

Rows stream: a reader never holds the whole file. Line numbers are those of the file (the
header is line 1); a CSV record with a quoted multi-line field keeps the line it starts on.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

CHUNK_BYTES = 1 << 20
SNIFF_CHARS = 64 * 1024
DELIMITERS = ",;\t|"
_ZIP_MAGIC = b"PK\x03\x04"
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")

FIELDS = (
    "name",
    "phone",
    "document",
    "amount_owed",
    "currency",
    "days_past_due",
    "email",
    "timezone",
    "country",
    "portfolio",
    "external_ref",
    "document_type",
)
"""Fields a list's columns can feed; a column named like one (any case, trimmed) feeds it."""
REQUIRED = ("name", "phone")
"""Columns every list must have (under these names or mapped to them)."""
Cell = str | int | float
"""A value as read: text from CSV; text or a number from XLSX."""


class ListFormatError(ValueError):
    """The file cannot be imported at all (unreadable, unknown format, missing columns)."""


class ListReader(Protocol):
    """Numbered records of one uploaded file."""

    header: list[str]
    """Column names as written in the file."""
    header_line: int
    """Line (CSV) or row (XLSX) of the header, 1-based."""
    sha256: str
    """Hex digest of the file's bytes."""
    delimiter: str
    """Delimiter for the error file (the input's, or ``,`` for XLSX)."""
    total: int
    """Progress units in the whole file (bytes for CSV, rows for XLSX)."""

    def records(self) -> Iterator[tuple[int, list[Cell]]]:
        """Yield ``(line_no, values)`` for every non-blank record after the header."""
        ...

    def done(self) -> int:
        """Progress units read so far."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


def open_list(path: Path) -> ListReader:
    """Open a call list, choosing the reader from the file's content (and its extension).

    Raises:
        ListFormatError: The file is missing, unreadable, empty or of an unknown format.
    """
    try:
        with path.open("rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise ListFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    suffix = path.suffix.lower()
    if head.startswith(_ZIP_MAGIC):
        if suffix not in (".xlsx", ".xlsm", ""):
            raise ListFormatError(f"{path.name}: a zip archive, not CSV or XLSX")
        return XlsxReader(path)
    if suffix in (".xls", ".ods", ".numbers", ".pdf", ".zip", ".gz"):
        raise ListFormatError(f"{path.name}: unknown format {suffix}; upload CSV or XLSX")
    if b"\x00" in head:
        raise ListFormatError(f"{path.name}: binary data, not a CSV or XLSX file")
    return CsvReader(path)


def _scan(path: Path) -> tuple[str, str]:
    """Hash the file and pick its encoding: UTF-8 (with or without BOM), else cp1252/Latin-1."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, cp1252, first = True, True, True
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
            if first:
                bom, first = chunk.startswith(codecs.BOM_UTF8), False
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            if cp1252 and any(b in chunk for b in _CP1252_UNDEFINED):
                cp1252 = False
    if utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
    if first:
        raise ListFormatError(f"{path.name}: the file is empty")
    if utf8:
        return digest.hexdigest(), "utf-8-sig" if bom else "utf-8"
    # Excel's "CSV (Windows)" writes cp1252; bytes it leaves undefined mean plain Latin-1.
    return digest.hexdigest(), "cp1252" if cp1252 else "latin-1"


def _dialect(sample: str) -> type[csv.Dialect]:
    """Sniff the delimiter and quoting; fall back to the header's most frequent delimiter."""
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    sample = sample[:cut] if cut > 0 else sample
    first_line = sample.splitlines()[0] if sample else ""
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
        delimiter, quotechar = sniffed.delimiter, sniffed.quotechar or '"'
        skip = bool(sniffed.skipinitialspace)
    except csv.Error:
        delimiter, quotechar, skip = ",", '"', False
    if len(next(csv.reader([first_line], delimiter=delimiter, quotechar=quotechar))) < 2:
        delimiter = max(DELIMITERS, key=first_line.count)

    class Sniffed(csv.Dialect):
        pass

    Sniffed.delimiter, Sniffed.quotechar, Sniffed.skipinitialspace = delimiter, quotechar, skip
    Sniffed.doublequote, Sniffed.quoting, Sniffed.lineterminator = True, csv.QUOTE_MINIMAL, "\r\n"
    Sniffed.strict = False
    return Sniffed


class CsvReader:
    """A CSV file: encoding and dialect detected, records numbered by the line they start on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sha256, self.encoding = _scan(path)
        self.total = path.stat().st_size
        self._raw = io.FileIO(path, "r")
        self._text = io.TextIOWrapper(
            io.BufferedReader(self._raw, CHUNK_BYTES), encoding=self.encoding, newline=""
        )
        self.dialect = _dialect(self._text.read(SNIFF_CHARS))
        self.delimiter = self.dialect.delimiter
        self._text.seek(0)
        self._reader = csv.reader(self._text, self.dialect)
        self.header: list[str] = []
        self.header_line = 0
        for line_no, values in self._numbered():
            self.header, self.header_line = [str(v) for v in values], line_no
            break
        if not self.header:
            raise ListFormatError(f"{path.name}: no header row")

    def _numbered(self) -> Iterator[tuple[int, list[Cell]]]:
        reader = self._reader
        start = reader.line_num + 1
        try:
            for values in reader:
                if any(values):
                    yield start, list(values)
                start = reader.line_num + 1
        except csv.Error as exc:
            raise ListFormatError(f"{self.path.name}: line {start}: {exc}") from exc

    def records(self) -> Iterator[tuple[int, list[Cell]]]:
        """Yield ``(line_no, values)`` for every non-blank record after the header."""
        return self._numbered()

    def done(self) -> int:
        """Bytes read so far (read-ahead included)."""
        return int(self._raw.tell())

    def close(self) -> None:
        """Close the file."""
        self._text.close()


def _xlsx_value(value: Any) -> Cell:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)  # phone numbers and document ids typed as numbers
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


class XlsxReader:
    """The first worksheet of an XLSX workbook, read with openpyxl in read-only mode."""

    delimiter = ","

    def __init__(self, path: Path) -> None:
        import openpyxl

        self.path = path
        self.sha256, _ = _scan(path)
        try:
            self._book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises zipfile, KeyError and XML errors alike
            raise ListFormatError(f"{path.name}: not a readable XLSX workbook ({exc})") from exc
        sheet = self._book.worksheets[0]
        self.total = int(sheet.max_row or 0)
        self._rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        self._done = 0
        self.header: list[str] = []
        self.header_line = 0
        for row_no, values in self._numbered():
            self.header, self.header_line = [str(v).strip() for v in values], row_no
            break
        if not self.header:
            raise ListFormatError(f"{path.name}: the first worksheet has no header row")
        while self.header and not self.header[-1]:
            self.header.pop()  # formatted but empty trailing columns

    def _numbered(self) -> Iterator[tuple[int, list[Cell]]]:
        for row_no, row in self._rows:
            self._done = row_no
            values = [_xlsx_value(v) for v in row]
            if any(v != "" for v in values):
                yield row_no, values

    def records(self) -> Iterator[tuple[int, list[Cell]]]:
        """Yield ``(row_no, values)`` for every non-blank row after the header."""
        return self._numbered()

    def done(self) -> int:
        """Rows read so far."""
        return self._done

    def close(self) -> None:
        """Close the workbook."""
        self._book.close()
