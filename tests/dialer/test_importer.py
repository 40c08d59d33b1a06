"""Call-list import on SQLite and PostgreSQL: dialects, encodings, bad rows, dedup, mapping."""

from __future__ import annotations

import csv
import shutil
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import FIXTURES
from voiceagent.crm.models import Account, CallList, CallListRow, Campaign, Phone, Promise
from voiceagent.crm.sink import DbCallSink
from voiceagent.dialer import campaigns as cmp
from voiceagent.dialer.amounts import AmountError, parse_amount, region_locale
from voiceagent.dialer.importer import import_list
from voiceagent.dialer.readers import ListFormatError
from voiceagent.dialog import actions as act

LISTS = FIXTURES / "lists"
CO_BAD_LINES = {
    5: "invalid phone number '12345' for CO",
    6: "missing name",
    7: "invalid amount '12,34,5'",
    8: "phone +525512345678 is not a number of country CO",
    9: "unknown country 'ZZ' (use an ISO 3166 code such as CO)",
}


def copy(name: str, tmp_path: Path) -> Path:
    """The fixture in a temp dir (the error report is written beside it)."""
    return Path(shutil.copy(LISTS / name, tmp_path / name))


def accounts(sessions: sessionmaker[Session]) -> dict[str, Account]:
    with sessions() as s:
        return {a.debtor_name: a for a in s.scalars(select(Account))}


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def phones(sessions: sessionmaker[Session], account_id: int) -> list[tuple[str, str]]:
    with sessions() as s:
        found = s.scalars(select(Phone).where(Phone.account_id == account_id).order_by(Phone.id))
        return [(p.e164, p.type) for p in found]


def test_latin1_semicolon_good_rows_import_and_bad_rows_report_their_lines(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = copy("co_latin1_semicolon.csv", tmp_path)
    result = import_list(engine, path, "Tarjetas marzo", region="CO")

    assert {r.line: r.reason for r in result.rejected} == CO_BAD_LINES
    assert (result.imported, result.duplicates) == (3, 0)
    found = accounts(sessions)
    assert set(found) == {"José Pérez", "María\r\nFernanda López", "Ñandú Gómez"}
    jose = found["José Pérez"]
    assert (jose.amount_owed_minor, jose.currency, jose.days_past_due) == (120_000_050, "COP", 35)
    assert (jose.timezone, jose.locale, jose.email) == (
        "America/Bogota",
        "es-419",
        "jose@example.com",
    )
    assert (jose.external_ref, jose.document_number) == ("1020304050", "1020304050")
    assert jose.extra == {"Ciudad": "Bogotá"}
    assert phones(sessions, jose.id) == [("+573001234567", "mobile")]
    maria = found["María\r\nFernanda López"]
    assert maria.amount_owed_minor == 45_000_000  # "450.000": '.' groups digits in es_CO
    assert phones(sessions, maria.id) == [("+573012345678", "mobile")]
    nandu = found["Ñandú Gómez"]
    assert nandu.amount_owed_minor == 250_075
    assert phones(sessions, nandu.id) == [("+576012345678", "fixed")]
    with sessions() as s:
        portfolios = {a.portfolio_id for a in s.scalars(select(Account))}
        assert len(portfolios) == 2  # "Tarjetas" from the row, "default" for the others
        rows = s.scalars(select(CallListRow).order_by(CallListRow.line_no)).all()
        assert [r.line_no for r in rows] == [2, 3, 5, 6, 7, 8, 9, 10]
        assert rows[1].raw["Ciudad"] == "Medellín" and rows[1].account_id == maria.id
        assert rows[2].error == CO_BAD_LINES[5] and rows[2].account_id is None
        call_list = s.get(CallList, result.call_list_id)
        assert call_list is not None
        assert (call_list.row_count, call_list.rejected_count) == (8, 5)
        campaign = s.get(Campaign, result.campaign_id)
        assert campaign is not None
        assert (campaign.name, campaign.call_list_id) == ("Tarjetas marzo", call_list.id)


def test_error_file_holds_line_reason_and_original_fields(engine: Engine, tmp_path: Path) -> None:
    path = copy("co_latin1_semicolon.csv", tmp_path)
    result = import_list(engine, path, "c", region="CO")
    assert result.error_file == tmp_path / "co_latin1_semicolon.errors.csv"
    with result.error_file.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows[0][:4] == ["line", "reason", " Name ", "PHONE"]
    assert [(int(r[0]), r[1]) for r in rows[1:]] == list(CO_BAD_LINES.items())
    assert rows[1][2:] == ["Bad Phone", "12345", "1111", "100", "", "1", "", "", "CO", "", "Cali"]


def test_utf8_bom_comma_quoted_fields_and_countries_per_row(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    result = import_list(engine, copy("intl_utf8_bom_comma.csv", tmp_path), "intl")
    assert (result.imported, result.rejected) == (2, [])
    assert result.error_file is None
    found = accounts(sessions)
    smith = found["Smith, John"]
    assert (smith.amount_owed_minor, smith.currency, smith.locale) == (120_050, "USD", "en-US")
    assert smith.timezone == "America/Los_Angeles"  # from the number's area code
    assert smith.extra == {"notes": 'said "call later"'}
    souza = found["Ana Souza"]
    assert (souza.amount_owed_minor, souza.currency, souza.locale) == (123_456, "BRL", "pt-BR")
    assert (souza.timezone, souza.document_number) == ("America/Sao_Paulo", "123.456.789-09")
    assert phones(sessions, souza.id) == [("+5511912345678", "mobile")]


def test_tab_separated(engine: Engine, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    result = import_list(engine, copy("co_tab.tsv", tmp_path), "tabs", region="co")
    assert (result.imported, result.rejected) == (2, [])
    found = accounts(sessions)
    assert found["Luis Díaz"].amount_owed_minor == 120_000_000
    assert found["Sofía Torres"].amount_owed_minor == 9_900_000
    assert phones(sessions, found["Sofía Torres"].id) == [("+573112223344", "mobile")]


def test_xlsx_rows_are_numbered_like_the_sheet(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Name", "Phone", "Amount_owed", "Days_past_due", "Segment"])
    sheet.append(["Carmen Ruiz", 3001234567, 1200000.5, 30, "A"])  # typed numbers
    sheet.append([None, None, None, None, None])  # a blank row keeps its number
    sheet.append(["Andrés Mora", "301 555 0000", "1.234.567,89", 7.0, "B"])
    sheet.append(["No Phone", None, 5, 1, "C"])
    path = tmp_path / "list.xlsx"
    book.save(path)

    result = import_list(engine, path, "xlsx", region="CO")
    assert result.imported == 2
    assert [(r.line, r.reason) for r in result.rejected] == [(5, "missing phone")]
    found = accounts(sessions)
    assert found["Carmen Ruiz"].amount_owed_minor == 120_000_050
    assert found["Carmen Ruiz"].extra == {"Segment": "A"}
    assert found["Andrés Mora"].amount_owed_minor == 123_456_789
    assert found["Andrés Mora"].days_past_due == 7
    assert phones(sessions, found["Carmen Ruiz"].id) == [("+573001234567", "mobile")]
    with sessions() as s:
        lines = s.scalars(select(CallListRow.line_no).order_by(CallListRow.line_no)).all()
    assert lines == [2, 4, 5]


def test_reupload_creates_no_accounts_and_counts_duplicates(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = copy("co_latin1_semicolon.csv", tmp_path)
    first = import_list(engine, path, "c", region="CO")
    again = import_list(engine, path, "c", region="CO")
    assert (first.imported, first.duplicates) == (3, 0)
    assert (again.imported, again.duplicates) == (0, 3)
    assert [r.line for r in again.rejected] == list(CO_BAD_LINES)
    assert count(sessions, Account) == 3
    assert count(sessions, Phone) == 3
    assert again.campaign_id == first.campaign_id
    with sessions() as s:
        campaign = s.get(Campaign, again.campaign_id)
        assert campaign is not None and campaign.call_list_id == again.call_list_id
        linked = s.scalars(
            select(CallListRow.account_id).where(CallListRow.call_list_id == again.call_list_id)
        ).all()
    assert len([a for a in linked if a is not None]) == 3  # duplicates still join the new list


def test_same_debtor_by_document_keeps_reference_and_gets_second_phone(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    first = tmp_path / "a.csv"
    first.write_text("name,phone,document,amount_owed\nAna,3001234567,D1,100\n", encoding="utf-8")
    second = tmp_path / "b.csv"
    second.write_text(
        "name,phone,document,external_ref,amount_owed\n"
        "Ana B,3007654321,D1,REF-9,250\n"
        "Ana B,3007654321,D1,REF-9,250\n",  # the same line twice: one more duplicate
        encoding="utf-8",
    )
    import_list(engine, first, "c", region="CO")
    result = import_list(engine, second, "c", region="CO")
    assert (result.imported, result.duplicates) == (0, 2)
    (account,) = accounts(sessions).values()
    assert (account.external_ref, account.debtor_name) == ("D1", "Ana B")  # refreshed
    assert account.amount_owed_minor == 25_000
    assert phones(sessions, account.id) == [
        ("+573001234567", "mobile"),
        ("+573007654321", "mobile"),
    ]


def test_column_mapping(engine: Engine, sessions: sessionmaker[Session], tmp_path: Path) -> None:
    path = copy("co_spanish_headers.csv", tmp_path)
    with pytest.raises(ListFormatError) as missing:
        import_list(engine, path, "c", region="CO")
    message = str(missing.value)
    assert "missing required column 'name' and 'phone'" in message
    assert "'Nombre', 'Telefono', 'Cedula', 'Saldo', 'Mora'" in message
    mapping = {"NOMBRE": "name", "telefono ": "phone", "cedula": "document", "saldo": "amount_owed"}
    result = import_list(engine, path, "c", region="CO", mapping=mapping)
    assert (result.imported, result.rejected) == (2, [])
    jorge = accounts(sessions)["Jorge Gómez"]
    assert (jorge.document_number, jorge.amount_owed_minor) == ("900", 100_000)
    assert jorge.extra == {"Mora": "3"}
    with pytest.raises(ListFormatError, match="unknown field 'fone'"):
        import_list(engine, path, "c", region="CO", mapping={"telefono": "fone"})
    with pytest.raises(ListFormatError, match="mapped column 'celular' not found"):
        import_list(engine, path, "c", region="CO", mapping={"celular": "phone"})


def test_numbers_without_country_code_need_a_region(engine: Engine, tmp_path: Path) -> None:
    path = copy("co_tab.tsv", tmp_path)
    result = import_list(engine, path, "c")
    assert result.imported == 0
    assert [r.line for r in result.rejected] == [2, 3]
    assert "has no country code" in result.rejected[0].reason


def test_the_campaigns_jurisdiction_is_the_default_region(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "national.csv"
    path.write_text("name,phone\nAna,300 123 4567\n", encoding="utf-8")
    first = import_list(engine, path, "other")  # no campaign jurisdiction, no --region
    assert first.imported == 0 and "has no country code" in first.rejected[0].reason
    with sessions.begin() as s:
        cmp.create(s, "Bogotá", first.call_list_id, cmp.CampaignConfig(jurisdiction="CO"))
    result = import_list(engine, path, "Bogotá")
    assert result.imported == 1 and not result.rejected
    assert phones(sessions, accounts(sessions)["Ana"].id) == [("+573001234567", "mobile")]


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04garbage", "not a readable XLSX workbook"),
        (b"\x00\x01\x02binary", "binary data"),
    ],
)
def test_unreadable_files(engine: Engine, tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "list.xlsx" if data.startswith(b"PK") else tmp_path / "list.csv"
    path.write_bytes(data)
    with pytest.raises(ListFormatError, match=problem):
        import_list(engine, path, "c")


def test_missing_file(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(ListFormatError, match="cannot read"):
        import_list(engine, tmp_path / "nope.csv", "c")


def test_worker_processes_give_the_same_result(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = copy("co_latin1_semicolon.csv", tmp_path)
    result = import_list(engine, path, "c", region="CO", workers=2, batch_rows=2)
    assert {r.line: r.reason for r in result.rejected} == CO_BAD_LINES
    assert (result.imported, result.duplicates) == (3, 0)
    assert count(sessions, Phone) == 3


@pytest.mark.parametrize(
    ("text", "region", "amount"),
    [
        ("1.200.000,50", "CO", "1200000.50"),
        ("1,200,000.50", "CO", "1200000.50"),
        ("1200000", "CO", "1200000"),
        ("1.200", "CO", "1200"),
        ("$ 1.500", "CO", "1500"),
        ("1200000,5", "US", "1200000.5"),
        ("1,200", "US", "1200"),
        ("1.234.567", "US", "1234567"),
        ("1.234,56", "BR", "1234.56"),
        ("1,234.56", "MX", "1234.56"),
    ],
)
def test_amounts_in_either_convention(text: str, region: str, amount: str) -> None:
    assert parse_amount(text, region_locale(region)) == Decimal(amount)


@pytest.mark.parametrize(
    ("text", "region", "reason"),
    [
        ("1,200", "CO", "ambiguous"),
        ("1.200", "US", "ambiguous"),
        ("12,34,5", "CO", "invalid"),
        ("1.20.0", "US", "invalid"),
        ("abc", "CO", "invalid"),
        ("-5", "CO", "negative"),
    ],
)
def test_ambiguous_or_invalid_amounts_are_refused(text: str, region: str, reason: str) -> None:
    with pytest.raises(AmountError, match=reason):
        parse_amount(text, region_locale(region))


def test_bulk_column_lists_match_the_orm_models() -> None:
    from voiceagent.crm.models import Base
    from voiceagent.dialer import bulk

    tables = Base.metadata.tables
    assert set(bulk._ACCOUNT_COLUMNS) <= set(tables["accounts"].c.keys())
    assert set(bulk._PHONE_COLUMNS) <= set(tables["phones"].c.keys())
    assert set(bulk._ROW_COLUMNS) <= set(tables["call_list_rows"].c.keys())
    for name, columns in (
        ("accounts", bulk._ACCOUNT_COLUMNS),
        ("phones", bulk._PHONE_COLUMNS),
        ("call_list_rows", bulk._ROW_COLUMNS),
    ):
        required = {
            c.name
            for c in tables[name].c
            if not c.nullable and c.server_default is None and not c.primary_key
        }
        assert required <= set(columns), f"{name}: the bulk insert misses {required - set(columns)}"


@pytest.mark.parametrize(
    "text", ["3001234567", "3991234567", "6012345678", "+1 650 253 0000", "+1 650 000 0000", "12"]
)
def test_phone_validity_agrees_with_is_valid_number(text: str) -> None:
    import phonenumbers

    from voiceagent.dialer.rows import phone_info

    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(text, "CO"))
    except phonenumbers.NumberParseException:
        valid = False
    assert isinstance(phone_info(text, "CO"), str) is not valid


def test_a_failed_import_is_marked_failed_and_uploading_it_again_completes_it(
    engine: Engine,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from voiceagent.dialer import bulk

    write = bulk.BulkWriter.write
    calls = 0

    def crash_on_the_third_batch(self: bulk.BulkWriter, s: Session, batch: list[Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk full")
        write(self, s, batch)

    path = copy("co_latin1_semicolon.csv", tmp_path)
    monkeypatch.setattr(bulk.BulkWriter, "write", crash_on_the_third_batch)
    with pytest.raises(RuntimeError, match="disk full"):
        import_list(engine, path, "c", region="CO", batch_rows=2)
    with sessions() as s:
        (failed,) = s.scalars(select(CallList))
        assert failed.status == "failed" and failed.row_count == 4  # two batches of two
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0  # never linked
        written = count(sessions, Account)
        assert 0 < written < 3
        cmp.create(s, "manual", failed.id, cmp.CampaignConfig(jurisdiction="CO"))
        with pytest.raises(ValueError, match="is failed; upload it again"):
            cmp.start(s, "manual")
    monkeypatch.setattr(bulk.BulkWriter, "write", write)
    again = import_list(engine, path, "c", region="CO", batch_rows=2)
    assert (again.imported, again.duplicates) == (3 - written, written)
    assert {r.line: r.reason for r in again.rejected} == CO_BAD_LINES
    assert count(sessions, Account) == 3
    with sessions() as s:
        ready = s.get_one(CallList, again.call_list_id)
        assert (ready.status, ready.row_count, ready.rejected_count) == ("ready", 8, 5)


def test_a_promise_commits_in_the_middle_of_a_big_upload(
    engine: Engine, sessions: sessionmaker[Session], account: tuple[int, int], tmp_path: Path
) -> None:
    """The upload holds the database between batches only: a live call is never locked out.

    The upload stops after its first batch until the promise is committed; with the whole
    upload in one transaction, SQLite's write lock would make the promise wait out the busy
    timeout and fail.
    """
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["name", "phone", "document", "amount_owed"])
        for i in range(2_000):
            out.writerow([f"Deudor {i}", f"+57310{i:07d}", f"D{i}", "100000"])
    first_batch, promised = threading.Event(), threading.Event()
    progress_at_promise: list[int] = []

    def progress(done: int, total: int) -> None:
        if not first_batch.is_set():
            first_batch.set()
            assert promised.wait(30), "the promise was never committed"
            progress_at_promise.append(done)

    results: list[Any] = []
    upload = threading.Thread(
        target=lambda: results.append(
            import_list(engine, path, "big", region="CO", progress=progress, batch_rows=200)
        )
    )
    upload.start()
    try:
        assert first_batch.wait(30)
        sink = DbCallSink(sessions)
        call_id = sink.open_call(
            dialplan_id="es-419/early",
            dialplan_version="1",
            account_id=account[0],
            phone_id=account[1],
        )
        sink.commit(call_id, act.RecordPromise(Decimal("50000"), "COP", date(2030, 1, 15), "full"))
        promised.set()
    finally:
        promised.set()
        upload.join(60)
    with sessions() as s:
        assert s.scalar(select(Promise.call_id)) == call_id
        assert s.get_one(CallList, results[0].call_list_id).status == "ready"
    assert results[0].imported == 2_000
    assert progress_at_promise and progress_at_promise[0] < path.stat().st_size
