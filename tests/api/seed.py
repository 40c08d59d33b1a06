"""A campaign day of calls with known timings, for the hand-computed metric tests.

Campaign 1 (es-419/early@v3), 2026-03-02 UTC, dials 10 minutes apart from 10:00:

====  =========  ======  ========  =========================================  ===========
dial  answered   RPC     talk (s)  committed                                  TMO (s)
====  =========  ======  ========  =========================================  ===========
1-4   no (ring 30 s)     -         -                                          30 each
5     +10 s      yes     120       promise 1000.00 COP due 03-10, kept;        135
                                   a slip event written 5 s after hang-up
6     +10 s      yes     180       promise 50.00 USD due 03-05, broken;        190
                                   transfer to "maria"
7     +10 s      yes     60        stop_contact flag                           70
8     +10 s      yes     240       promise 2500.00 COP due 04-01 (pending);    250
                                   a callback
9     +10 s      no      30        (wrong party)                               40
10    +10 s      no      6         outcome no_answer (agent never spoke)       16
====  =========  ======  ========  =========================================  ===========

Plus campaign 2 on the same day: one dial answered by a machine (not connected), and one
campaign-1 dial on 2026-03-01 (outside a 03-02 range).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tests.crm.conftest import make_account
from voiceagent.crm.models import (
    Attempt,
    Call,
    Callback,
    CallEvent,
    CallList,
    Campaign,
    ContactRestriction,
    Promise,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY = (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC))
AS_OF = date(2026, 3, 20)


def _s(n: float) -> timedelta:
    return timedelta(seconds=n)


def seed(s: Session) -> dict[str, Any]:
    """Write the fixture; return ids (campaigns, account, call ids by dial number)."""
    account, phone = make_account(s)
    call_list = CallList(
        portfolio_id=account.portfolio_id, name="l", filename="l.csv", sha256="0" * 64
    )
    s.add(call_list)
    s.flush()
    c1 = Campaign(
        name="C1", call_list_id=call_list.id, dialplan_id="es-419/early", dialplan_version="v3"
    )
    c2 = Campaign(
        name="C2", call_list_id=call_list.id, dialplan_id="es-419/late", dialplan_version="v1"
    )
    s.add_all([c1, c2])
    s.flush()

    def attempt(campaign: Campaign, start: datetime, **kw: Any) -> Attempt:
        row = Attempt(
            campaign_id=campaign.id,
            account_id=account.id,
            phone_id=phone.id,
            started_at=start,
            **kw,
        )
        s.add(row)
        s.flush()
        return row

    calls: dict[int, str] = {}
    talk = {5: 120, 6: 180, 7: 60, 8: 240, 9: 30, 10: 6}
    rpc = {5, 6, 7, 8}
    for n in range(1, 11):
        start = T0 + timedelta(minutes=10 * (n - 1))
        if n <= 4:
            attempt(c1, start, ended_at=start + _s(30), result="no_answer")
            continue
        answered = start + _s(10)
        ended = answered + _s(talk[n])
        a = attempt(c1, start, answered_at=answered, ended_at=ended, result="answered")
        call = Call(
            id=f"call-{n}",
            attempt_id=a.id,
            account_id=account.id,
            phone_id=phone.id,
            dialplan_id="es-419/early",
            dialplan_version="v3",
            status="ended",
            outcome="no_answer" if n == 10 else "done",
            right_party=n in rpc,
            started_at=answered,
            ended_at=ended,
            duration_ms=talk[n] * 1000,
            timings={5: {"turn_latency_ms": [800, 1200]}, 6: {"turn_latency_ms": [1000]}}.get(
                n, {}
            ),
        )
        s.add(call)
        s.flush()
        calls[n] = call.id
    s.add_all(
        [
            CallEvent(
                call_id="call-5",
                at=T0 + timedelta(minutes=40) + _s(60),
                kind="record_promise",
                data={"amount": "1000.00"},
            ),
            CallEvent(
                call_id="call-5",
                at=T0 + timedelta(minutes=40) + _s(135),
                kind="send_slip",
                data={"channel": "sms"},
            ),
            CallEvent(
                call_id="call-6",
                at=T0 + timedelta(minutes=50) + _s(100),
                kind="transfer",
                data={"target": "maria"},
            ),
            CallEvent(
                call_id="call-7",
                at=T0 + timedelta(minutes=60) + _s(50),
                kind="record_flag",
                data={"flag": "stop_contact"},
            ),
            Promise(
                account_id=account.id,
                call_id="call-5",
                amount_minor=100_000,
                currency="COP",
                due_date=date(2026, 3, 10),
                status="kept",
                paid_minor=100_000,
            ),
            Promise(
                account_id=account.id,
                call_id="call-6",
                amount_minor=5_000,
                currency="USD",
                due_date=date(2026, 3, 5),
                status="broken",
            ),
            Promise(
                account_id=account.id,
                call_id="call-8",
                amount_minor=250_000,
                currency="COP",
                due_date=date(2026, 4, 1),
                status="pending",
            ),
            Callback(account_id=account.id, call_id="call-8", due_at=T0 + timedelta(days=1)),
            ContactRestriction(
                account_id=account.id, kind="stop_contact", scope="account", source_call_id="call-7"
            ),
        ]
    )
    machine = T0 + timedelta(hours=3)
    attempt(c2, machine, answered_at=machine + _s(5), ended_at=machine + _s(8), result="machine")
    before = T0 - timedelta(days=1)
    attempt(c1, before, ended_at=before + _s(20), result="busy")
    s.flush()
    return {"c1": c1.id, "c2": c2.id, "account": account.id, "calls": calls}
