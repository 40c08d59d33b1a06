"""Best hours: a known answer pattern is found, sparse data shrinks, local time is per account."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import typer
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.crm.conftest import make_account
from voiceagent.crm import repo
from voiceagent.crm.models import Account, Attempt, Call
from voiceagent.dialer.besthours import BestHours, local_cell
from voiceagent.dialer.besthours_cli import best_hours_cmd

_today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
START = _today - timedelta(days=_today.weekday() + 35)
"""A Monday 00:00 UTC five weeks before this week (inside the CLI's 90-day window)."""
NOW = START + timedelta(days=35)
EVENING = (18, 19, 20)
Row = tuple[int, int, datetime, bool, bool]
"""account id, phone id, start (UTC), answered by a person, right party."""


def accounts(
    sessions: sessionmaker[Session], n: int, *, prefix: str, tz: str, portfolio: str | None = None
) -> list[tuple[int, int]]:
    """``n`` accounts (and their phone) in the fixture portfolio or another one."""
    out = []
    with sessions.begin() as s:
        for i in range(n):
            account, phone = make_account(
                s, f"{prefix}{i}", f"+57310{len(prefix)}{i:06d}", f"{prefix}{i}"
            )
            account.timezone = tz
            if portfolio is not None:
                account.portfolio_id = repo.portfolio(s, "Banco Andino", portfolio).id
            out.append((account.id, phone.id))
    return out


_next_id = iter(range(1, 10**9))


def store(sessions: sessionmaker[Session], rows: list[Row]) -> None:
    """Attempts (and calls for the answered ones), in bulk."""
    attempts, calls = [], []
    for account_id, phone_id, at, answered, rpc in rows:
        attempt_id = next(_next_id)
        attempts.append(
            {
                "id": attempt_id,
                "account_id": account_id,
                "phone_id": phone_id,
                "started_at": at,
                "answered_at": at + timedelta(seconds=10) if answered else None,
                "ended_at": at + timedelta(seconds=60),
                "result": "answered" if answered else "no_answer",
            }
        )
        if answered:
            calls.append(
                {
                    "id": f"c-{attempt_id}",
                    "attempt_id": attempt_id,
                    "account_id": account_id,
                    "phone_id": phone_id,
                    "direction": "outbound",
                    "dialplan_id": "es-419/early",
                    "dialplan_version": "1",
                    "status": "ended",
                    "right_party": rpc,
                    "interrupted": False,
                    "started_at": at,
                    "timings": {},
                }
            )
    with sessions.begin() as s:
        s.execute(insert(cast(Table, Attempt.__table__)), attempts)
        if calls:
            s.execute(insert(cast(Table, Call.__table__)), calls)


def bogota_evenings(people: list[tuple[int, int]]) -> Iterator[Row]:
    """Weekdays 08-20h Bogotá (UTC-5) for 5 weeks: answered mostly at 18-20h, rarely otherwise."""
    i = 0
    for day in range(35):
        if day % 7 >= 5:
            continue
        for hour in range(8, 21):
            for account_id, phone_id in people:
                i += 1
                at = START + timedelta(days=day, hours=hour + 5)
                answered = i % 4 != 0 if hour in EVENING else i % 10 == 0
                yield account_id, phone_id, at, answered, answered and i % 3 != 0


def fit(sessions: sessionmaker[Session], **kw: Any) -> BestHours:
    with sessions() as s:
        return BestHours.fit(s, now=NOW, **kw)


def account(sessions: sessionmaker[Session], account_id: int) -> Account:
    with sessions() as s:
        found = s.get(Account, account_id)
        assert found is not None
        return found


def test_weekday_evenings_rank_first(sessions: sessionmaker[Session]) -> None:
    people = accounts(sessions, 6, prefix="B", tz="America/Bogota")
    store(sessions, list(bogota_evenings(people)))
    model = fit(sessions, min_account_attempts=10_000)
    ranked = model.rank_hours(account(sessions, people[0][0]))
    assert len(ranked) == 7 * 24
    top = {(day, hour) for day, hour, _ in ranked[:15]}
    assert top == {(day, hour) for day in range(5) for hour in EVENING}
    assert ranked[0][2] > 0.4 and ranked[-1][2] < 0.05
    someone = account(sessions, people[1][0])
    evening = START + timedelta(days=2, hours=19 + 5)  # Wednesday 19h in Bogotá
    morning = START + timedelta(days=2, hours=9 + 5)
    assert model.order_key(someone, evening) < model.order_key(someone, morning)


def test_few_attempts_fall_back_to_the_segment(sessions: sessionmaker[Session]) -> None:
    people = accounts(sessions, 6, prefix="B", tz="America/Bogota")
    store(sessions, list(bogota_evenings(people)))
    few = accounts(sessions, 1, prefix="F", tz="America/Bogota")[0]
    many = accounts(sessions, 1, prefix="M", tz="America/Bogota")[0]
    tuesday_9 = START + timedelta(days=1, hours=9 + 5)
    store(sessions, [(*few, tuesday_9 + timedelta(weeks=w), True, True) for w in range(3)])
    store(
        sessions,
        [(*many, tuesday_9 + timedelta(weeks=w % 5, minutes=w), True, True) for w in range(25)],
    )
    fresh = accounts(sessions, 1, prefix="N", tz="America/Bogota", portfolio="Nueva")[0]
    model = fit(sessions, min_account_attempts=20)
    few_account = account(sessions, few[0])
    segment = model.segment_estimates((few_account.portfolio_id, few_account.locale))
    plain = [
        (e.weekday, e.hour, e.p_rpc) for e in sorted(segment, key=lambda e: (-e.p_rpc, -e.p_answer))
    ]
    assert plain[0][:2] != (1, 9)
    assert not model.has_own_profile(few_account)
    assert model.rank_hours(few_account) == plain  # 3 attempts: exactly the segment
    many_account = account(sessions, many[0])
    assert model.has_own_profile(many_account)
    assert model.rank_hours(many_account)[0][:2] == (1, 9)  # 25 attempts: its own best hour
    fresh_ranked = model.rank_hours(account(sessions, fresh[0]))  # a portfolio with no history
    global_ranked = sorted(model.segment_estimates(None), key=lambda e: (-e.p_rpc, -e.p_answer))
    assert [(d, h) for d, h, _ in fresh_ranked[:5]] == [
        (e.weekday, e.hour) for e in global_ranked[:5]
    ]


def test_sparse_cells_are_shrunk_not_trusted(sessions: sessionmaker[Session]) -> None:
    people = accounts(sessions, 6, prefix="B", tz="America/Bogota")
    store(sessions, list(bogota_evenings(people)))
    other = accounts(sessions, 2, prefix="S", tz="America/Bogota", portfolio="Hipotecas")
    wednesday_10 = START + timedelta(days=2, hours=10 + 5)
    store(
        sessions, [(*other[i % 2], wednesday_10 + timedelta(weeks=i), True, True) for i in range(4)]
    )
    model = fit(sessions)
    sparse = model.estimate_at(account(sessions, other[0][0]), wednesday_10)
    assert (sparse.weekday, sparse.hour, sparse.attempts) == (2, 10, 4)
    global_cell = model.segment_estimates(None)[2 * 24 + 10]
    assert global_cell.p_rpc < sparse.p_rpc < 1.0  # 4 of 4 RPC: pulled toward the parent


def test_same_utc_moment_is_a_different_local_hour(sessions: sessionmaker[Session]) -> None:
    monday_23_utc = START + timedelta(hours=23)
    assert local_cell(monday_23_utc, "America/Bogota") == (0, 18)
    assert local_cell(monday_23_utc, "America/Sao_Paulo") == (0, 20)
    bogota = accounts(sessions, 4, prefix="B", tz="America/Bogota")
    sao_paulo = accounts(sessions, 4, prefix="P", tz="America/Sao_Paulo")
    rows: list[Row] = []
    for week in range(5):
        for utc_hour in range(12, 24):
            at = monday_23_utc.replace(hour=utc_hour) + timedelta(weeks=week)
            for person in bogota:  # answers at 23:00 UTC = 18h in Bogotá
                rows.append((*person, at, utc_hour == 23, utc_hour == 23))
            for person in sao_paulo:  # never answers at 23:00 UTC = 20h in São Paulo
                rows.append((*person, at, utc_hour == 17, utc_hour == 17))
    store(sessions, rows)
    model = fit(sessions)  # one segment: same portfolio, same locale
    assert len(model.segments) == 1
    bog, sp = account(sessions, bogota[0][0]), account(sessions, sao_paulo[0][0])
    at_bog, at_sp = model.estimate_at(bog, monday_23_utc), model.estimate_at(sp, monday_23_utc)
    assert (at_bog.hour, at_sp.hour) == (18, 20)
    assert at_bog.p_rpc > 3 * at_sp.p_rpc
    assert model.order_key(bog, monday_23_utc) < model.order_key(sp, monday_23_utc)


def test_report_best_hours_json(sessions: sessionmaker[Session], migrated_url: str) -> None:
    people = accounts(sessions, 6, prefix="B", tz="America/Bogota")
    store(sessions, list(bogota_evenings(people)))
    app = typer.Typer()
    app.command("best-hours")(best_hours_cmd)
    app.command("other")(lambda: None)  # two commands: typer keeps the sub-command name
    args = ["best-hours", "--json", "--top", "3", "--database-url", migrated_url]
    result = CliRunner().invoke(app, [*args, "--portfolio", "Tarjetas 2024"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    [segment] = out["segments"]
    assert (segment["portfolio"], segment["locale"]) == ("Tarjetas 2024", "es-419")
    assert segment["attempts"] == out["attempts"] == 6 * 25 * 13
    assert {c["hour"] for c in segment["best"]} <= set(EVENING)
    missing = CliRunner().invoke(app, [*args, "--portfolio", "Nope"])
    assert missing.exit_code == 2 and "no portfolio named 'Nope'" in missing.output
