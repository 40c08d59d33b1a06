"""``voiceagent compliance`` and the CRM-backed inputs (ledger, zones, flags) on SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from voiceagent.crm import repo
from voiceagent.crm.db import make_engine, session_factory, upgrade
from voiceagent.crm.models import Attempt, Call, ContactRestriction
from voiceagent.dialer.compliance_cli import compliance_app
from voiceagent.dialer.ledger import build_ledger, subject
from voiceagent.dialer.packs import get_pack
from voiceagent.dialer.rules import check

runner = CliRunner()
BOG = ZoneInfo("America/Bogota")


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(compliance_app, list(args))
    return result.exit_code, result.output


def test_holiday_in_bogota_as_json() -> None:
    code, out = invoke(
        "check", "--jurisdiction", "CO", "--tz", "America/Bogota",
        "--at", "2026-12-08T10:00", "--json",
    )  # fmt: skip
    assert code == 0, out
    data = json.loads(out)
    assert list(data) == ["allowed", "rule", "next_allowed_at"]
    assert data["allowed"] is False
    assert data["rule"].startswith("co.holidays: Ley 2300 de 2023")
    assert data["next_allowed_at"] == "2026-12-09T07:00:00-05:00"


def test_holiday_in_bogota_explained() -> None:
    code, out = invoke("check", "--jurisdiction", "CO", "--at", "2026-12-08T10:00")
    assert code == 0, out
    assert "REFUSED by co.holidays: 2026-12-08 is a public holiday in CO" in out
    assert "Ley 2300 de 2023" in out
    assert "next allowed: Wed 2026-12-09 07:00 -05" in out


def test_at_with_offset_is_not_local_and_allowed_gives_now() -> None:
    code, out = invoke(
        "check", "--jurisdiction", "co", "--at", "2026-12-09T12:00:00+00:00", "--json"
    )
    assert code == 0, out
    assert json.loads(out) == {
        "allowed": True,
        "rule": None,
        "next_allowed_at": "2026-12-09T07:00:00-05:00",
    }


def test_calendar_check_ignores_person_rules() -> None:
    # Colombia needs an authorized channel; the calendar check has no person, so it allows.
    code, out = invoke("check", "--jurisdiction", "CO", "--at", "2026-12-09T10:00", "--json")
    assert json.loads(out)["allowed"] is True


def test_several_zones_and_a_subdivision() -> None:
    code, out = invoke(
        "check", "--jurisdiction", "US", "--tz", "America/Boise", "--tz", "America/Los_Angeles",
        "--at", "2026-06-10T08:30", "--json",
    )  # fmt: skip
    data = json.loads(out)
    assert data["rule"].startswith("us.hours:")
    assert data["next_allowed_at"] == "2026-06-10T09:00:00-06:00"
    code, out = invoke(
        "check", "--jurisdiction", "BR", "--subdivision", "SP", "--at", "2026-06-13T10:00", "--json"
    )
    assert json.loads(out)["allowed"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--at", "2026-12-08T10:00"], "pass --jurisdiction"),
        (["check", "--jurisdiction", "XY", "--at", "2026-12-08T10:00"], "no compliance pack"),
        (["check", "--jurisdiction", "CO", "--at", "8 Dec"], "expected ISO 8601"),
        (["check", "--jurisdiction", "CO", "--tz", "Mars/Base", "--at", "2026-12-08T10:00"],
         "unknown time zone"),
    ],
)  # fmt: skip
def test_bad_arguments_fail_clearly(args: list[str], message: str) -> None:
    code, out = invoke(*args)
    assert code == 2 and message in out


def test_packs_lists_rules_with_citations() -> None:
    code, out = invoke("packs")
    assert code == 0
    for pack in ("US", "CO", "PE", "MX", "BR", "CL", "AR"):
        assert f"\n{pack}  " in f"\n{out}"
    assert "us-ma.two_in_seven" in out and "940 CMR 7.04(1)(f)" in out and "(only in MA)" in out
    assert "[legal review pending]" in out
    code, out = invoke("packs", "--json")
    data = {p["id"]: p for p in json.loads(out)}
    assert data["AR"]["legal_review"] is True
    assert "collector_disclosure" in data["US"]["required_prompts"]
    assert all(rule["cite"] for p in data.values() for rule in p["rules"])


# --- CRM-backed: ledger, zones and flags from the tables ------------------------------------


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('compliance') / 'crm.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        yield s
        s.rollback()
    engine.dispose()


def _account(s: Session, ref: str, e164: str = "+573001234567", **extra: str) -> tuple[int, int]:
    folio = repo.portfolio(s, "Banco Andino", "Tarjetas")
    acc, _ = repo.upsert_account(
        s,
        folio.id,
        repo.AccountRow(
            external_ref=ref, debtor_name="María López", amount_owed_minor=100_000,
            currency="COP", timezone="America/Bogota", locale="es-419", extra=dict(extra),
        ),
    )  # fmt: skip
    phone = repo.add_phone(s, acc.id, e164, consent=True, consent_source="contract")
    return acc.id, phone.id


def _attempt(s: Session, account_id: int, phone_id: int, at: datetime, talk: bool = False) -> int:
    attempt = Attempt(account_id=account_id, phone_id=phone_id, started_at=at, result="answered")
    s.add(attempt)
    s.flush()
    if talk:
        s.add(
            Call(
                id=f"call-{attempt.id}", attempt_id=attempt.id, account_id=account_id,
                phone_id=phone_id, dialplan_id="es-419/early", dialplan_version="1",
                status="ended", right_party=True, started_at=at,
            )
        )  # fmt: skip
        s.flush()
    return attempt.id


def test_ledger_counts_every_attempt_and_right_party_conversations(session: Session) -> None:
    acc, phone = _account(session, "L-1")
    now = datetime(2026, 6, 10, 20, 0, tzinfo=UTC)
    _attempt(session, acc, phone, now - timedelta(days=90))  # outside the lookback
    _attempt(session, acc, phone, now - timedelta(days=2))
    a2 = _attempt(session, acc, phone, now - timedelta(hours=3), talk=True)
    _attempt(session, acc, phone, now + timedelta(hours=1))  # after the checked moment
    ledger = build_ledger(session, acc, now)
    assert [c.at_utc for c in ledger.attempts] == [
        now - timedelta(days=2),
        now - timedelta(hours=3),
    ]
    assert ledger.conversations == (now - timedelta(hours=3),)
    assert all(c.at_utc.tzinfo is not None for c in ledger.attempts)
    connecting = build_ledger(session, acc, now, exclude_attempt_id=a2)
    assert len(connecting.attempts) == 1 and connecting.conversations == ()


def test_subject_reads_zones_country_subdivision_and_flags(session: Session) -> None:
    acc, phone = _account(session, "S-1", "+12084561234", state="ma")
    sub = subject(session, acc, datetime(2026, 6, 10, 15, 0, tzinfo=UTC))
    assert sub.jurisdiction == "US" and sub.subdivision == "MA"
    assert sub.zones == ("America/Bogota", "America/Boise", "America/Los_Angeles")
    assert sub.flags.authorized_channels == frozenset({"voice"})
    assert sub.flags.restrictions == frozenset()
    session.add(ContactRestriction(account_id=acc, kind="stop_contact", scope="account"))
    session.flush()
    assert subject(session, acc, datetime(2026, 6, 10, tzinfo=UTC)).flags.restrictions == {"cease"}


def test_reserved_attempt_is_rechecked_at_connect(session: Session) -> None:
    acc, phone = _account(session, "R-1")
    reserve = datetime(2026, 6, 10, 18, 59, 58, tzinfo=BOG).astimezone(UTC)
    connect = datetime(2026, 6, 10, 19, 0, 3, tzinfo=BOG).astimezone(UTC)
    pack = get_pack("CO")
    before = subject(session, acc, reserve)
    assert check(pack, reserve, before.zones, None, before.ledger, before.flags).allowed
    attempt_id = _attempt(session, acc, phone, reserve)  # reserved in the same transaction
    again = subject(session, acc, connect, exclude_attempt_id=attempt_id)
    decision = check(pack, connect, again.zones, None, again.ledger, again.flags)
    assert not decision.allowed and decision.rule_id == "co.hours"


def _write_db(db_url: str, ref: str) -> tuple[int, int]:
    engine = make_engine(db_url)
    with session_factory(engine).begin() as s:
        acc, phone = _account(s, ref)
        talk = datetime(2026, 6, 10, 9, 0, tzinfo=BOG).astimezone(UTC)
        _attempt(s, acc, phone, talk, talk=True)
    engine.dispose()
    return acc, phone


def test_account_check_explains_the_daily_cap(db_url: str) -> None:
    acc, _ = _write_db(db_url, "C-1")
    base = ["check", "--account", str(acc), "--database-url", db_url]
    code, out = invoke(*base, "--at", "2026-06-10T15:00", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["rule"].startswith("co.once_a_day:")
    assert data["next_allowed_at"] == "2026-06-11T07:00:00-05:00"
    code, out = invoke(*base, "--at", "2026-06-10T15:00")
    assert "REFUSED by co.once_a_day: 1 attempt(s) already placed today (at most 1)" in out
    code, out = invoke(*base, "--at", "2026-06-11T07:01", "--json")
    assert json.loads(out)["allowed"] is True


def test_account_check_with_stop_contact_is_never_allowed(db_url: str) -> None:
    acc, _ = _write_db(db_url, "C-2")
    engine = make_engine(db_url)
    with session_factory(engine).begin() as s:
        s.add(ContactRestriction(account_id=acc, kind="stop_contact", scope="account"))
    engine.dispose()
    code, out = invoke(
        "check", "--account", str(acc), "--database-url", db_url, "--at", "2026-06-12T10:00"
    )
    assert "REFUSED by co.restrictions: restriction in force: cease" in out
    assert "next allowed: never" in out


def test_unknown_account_fails(db_url: str) -> None:
    code, out = invoke(
        "check", "--account", "999999", "--database-url", db_url, "--at", "2026-06-12T10:00"
    )
    assert code == 2 and "no account 999999" in out
