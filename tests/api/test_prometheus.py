"""``/metrics``: today's CRM figures from the database, and the loop-lag gauge."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import bearer
from tests.crm.conftest import make_account
from voiceagent.crm.models import Attempt, Call, CallList, Campaign
from voiceagent.metrics import LOOP_LAG, export_loop_lag


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_scrape_has_todays_figures(
    client: TestClient, tokens: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = max(now - timedelta(minutes=5), now.replace(hour=0, minute=0, second=0))
    with sessions.begin() as s:
        account, phone = make_account(s)
        lst = CallList(portfolio_id=account.portfolio_id, name="l", filename="f", sha256="0")
        s.add(lst)
        s.flush()
        campaign = Campaign(name="c", call_list_id=lst.id, dialplan_id="p", dialplan_version="1")
        s.add(campaign)
        s.flush()
        for answered in (True, False):
            a = Attempt(
                campaign_id=campaign.id,
                account_id=account.id,
                phone_id=phone.id,
                started_at=start,
                ended_at=start + timedelta(seconds=20),
                answered_at=start + timedelta(seconds=5) if answered else None,
            )
            s.add(a)
            s.flush()
            if answered:
                s.add(
                    Call(
                        id="live",
                        attempt_id=a.id,
                        account_id=account.id,
                        dialplan_id="p",
                        dialplan_version="1",
                        right_party=True,
                        started_at=start,
                    )
                )
        campaign_id = campaign.id
    response = client.get("/metrics", headers=bearer(tokens["supervisor"]))
    assert response.status_code == 200
    samples = _samples(response.text)
    label = (("campaign", str(campaign_id)),)
    assert samples[("voiceagent_day_attempts", label)] == 2
    assert samples[("voiceagent_day_connected", label)] == 1
    assert samples[("voiceagent_day_contact_rate", label)] == 0.5
    assert samples[("voiceagent_day_tmo_seconds", label)] == 20.0
    assert samples[("voiceagent_calls_in_progress", ())] == 1
    assert samples[("voiceagent_campaigns", (("status", "draft"),))] == 1
    assert ("voiceagent_day_kept_rate", label) not in samples  # no promise due: no sample
    assert ("voiceagent_loop_lag_seconds", ()) in samples
    assert client.get("/metrics", headers=bearer(tokens["operator"])).status_code == 403


async def test_loop_lag_exported_and_drained() -> None:
    class Monitor:
        samples_s = [0.001, 0.004, 0.002]

    monitor = Monitor()
    task = asyncio.get_running_loop().create_task(export_loop_lag(monitor, every_s=0.01))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    assert LOOP_LAG._value.get() == 0.004  # type: ignore[attr-defined]
    assert monitor.samples_s == []
