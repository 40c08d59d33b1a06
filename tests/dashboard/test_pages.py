"""Dashboard pages with TestClient over a seeded SQLite CRM: login, roles, figures, i18n."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from tests.dashboard.conftest import RECORDED_CALL, Seeded, login
from voiceagent.api.dashboard import pages
from voiceagent.crm.db import make_engine, session_factory
from voiceagent.crm.models import Call
from voiceagent.crm.types import utcnow

EVERY = {"operator", "supervisor", "admin"}
PAGE_ROLES = {
    "/ui/live": EVERY,
    "/ui/campaigns": EVERY,
    "/ui/metrics": {"supervisor", "admin"},
    "/ui/calls": EVERY,
    f"/ui/calls/{RECORDED_CALL}": EVERY,
    "/ui/promises": EVERY,
    "/ui/upload": {"operator", "admin"},
}
"""Written out by hand (not read from ``pages.PAGES``) so a changed rule fails here."""
DAY = "from=2026-03-02&to=2026-03-02"


class Cells(HTMLParser):
    """Text of every element carrying ``data-metric`` (``(row id or 'card', metric) -> text``)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[tuple[str, str], str] = {}
        self._row = "card"
        self._open: list[tuple[str, int]] = []
        self._depth = 0
        self._text: dict[int, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self._depth += 1
        if tag == "tr" and a.get("data-campaign-id"):
            self._row = f"campaign-{a['data-campaign-id']}"
        if a.get("data-metric"):
            self._open.append((str(a["data-metric"]), self._depth))
            self._text[self._depth] = []

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][1] == self._depth:
            key, depth = self._open.pop()
            self.found[(self._row, key)] = " ".join("".join(self._text.pop(depth)).split())
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for _key, depth in self._open:
            self._text[depth].append(data)


def cells(html: str) -> dict[tuple[str, str], str]:
    parser = Cells()
    parser.feed(html)
    return parser.found


def card(html: str, key: str) -> str:
    """A metric card's text: its label then its value."""
    return cells(html)[("card", key)]


def test_pages_redirect_to_login_without_a_session(client: TestClient) -> None:
    client.cookies.clear()
    for path in [*PAGE_ROLES, "/ui/lists/1/errors.csv"]:
        response = client.get(path + "?page=2")
        assert response.status_code == 303, path
        assert response.headers["location"] == (
            f"/ui/login?next={path.replace('/', '%2F')}%3Fpage%3D2"
        )
    assert client.get("/").headers["location"] == "/ui/live"
    page = client.get("/ui/login?next=%2Fui%2Fcalls")
    assert page.status_code == 200
    assert 'data-next="/ui/calls"' in page.text and 'id="login-password"' in page.text
    # an open redirect is refused
    assert 'data-next="/ui/live"' in client.get("/ui/login?next=//evil.example").text


def test_a_bad_or_forged_cookie_is_no_session(client: TestClient) -> None:
    client.cookies.clear()
    client.cookies.set("voiceagent_session", "forged.value.here")
    assert client.get("/ui/live").status_code == 303
    client.cookies.clear()


@pytest.mark.parametrize("role", sorted(EVERY))
def test_each_page_renders_for_its_roles_only(client: TestClient, role: str) -> None:
    login(client, role)
    for path, roles in PAGE_ROLES.items():
        response = client.get(path)
        if role in roles:
            assert response.status_code == 200, (path, role, response.text[:300])
            assert f"({role})" in response.text  # the header names the user and role
        else:
            assert response.status_code == 403, (path, role)
            assert role in response.text and 'role="alert"' in response.text
    nav = re.findall(r'<a href="/ui/(\w+)"', client.get("/ui/live").text)
    expected = [p.removeprefix("/ui/") for p, r in PAGE_ROLES.items() if role in r]
    assert nav == [p for p in expected if "/" not in p]


def test_pages_send_a_strict_csp_and_use_no_inline_script(client: TestClient) -> None:
    login(client, "admin")
    for path in [*PAGE_ROLES, "/ui/login"]:
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        html = response.text
        assert not re.search(r"\son[a-z]+\s*=", html), path  # no onclick= & co.
        assert not re.search(r"\sstyle\s*=", html), path
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert 'src="/static/' in tag or 'type="application/json"' in tag, (path, tag)


def test_static_assets_are_served_and_confined(client: TestClient) -> None:
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "addEventListener" in js.text
    assert "javascript" in js.headers["content-type"]
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/static/../pages.py").status_code == 404
    assert client.get("/static/%2e%2e/pages.py").status_code == 404
    assert client.get("/static/nope.js").status_code == 404


def test_metrics_page_shows_the_hand_computed_figures(client: TestClient, seeded: Seeded) -> None:
    login(client, "supervisor")
    html = client.get(f"/ui/metrics?{DAY}&as_of=2026-03-20&lang=en").text
    # the day's totals: campaign 1's ten dials plus campaign 2's answering machine
    assert card(html, "attempts") == "Attempts 11"
    assert card(html, "connected") == "Connected 6"
    assert card(html, "tma_s") == "TMA 106.0 s"
    assert card(html, "cpc") == "CPC 66.7 %"
    assert card(html, "promises") == "Promises 3"
    assert card(html, "promised") == "Promised amount COP 3,500.00 · USD 50.00"
    assert card(html, "avg_turn_latency_ms") == "Turn latency 1,000 ms"
    row = f"campaign-{seeded.ids['c1']}"
    found = cells(html)
    assert found[(row, "attempts")] == "10"
    assert found[(row, "contact_rate")] == "60.0 %"
    assert found[(row, "tma_s")] == "106.0 s"
    assert found[(row, "tmo_s")] == "82.1 s"
    assert found[(row, "ptp_rate")] == "75.0 %"
    assert found[(row, "kept_rate")] == "50.0 %"
    assert found[(row, "abandon_rate")] == "16.7 %"
    assert found[(f"campaign-{seeded.ids['c2']}", "connected")] == "0"
    # the chart data covers the 14 days up to the last day, the seeded day included
    series = re.search(r'id="metric-series">(.*?)</script>', html, re.S)
    assert series is not None
    assert '"day": "2026-02-17"' in series.group(1) and '"tma_s": 106.0' in series.group(1)


def test_spanish_by_default_then_accept_language_then_query_and_cookie(
    client: TestClient,
) -> None:
    login(client, "supervisor")
    client.cookies.delete("voiceagent_lang")
    es = client.get(f"/ui/metrics?{DAY}")
    assert '<html lang="es">' in es.text and "Métricas" in es.text
    assert card(es.text, "tma_s") == "TMA 106,0 s"  # decimal comma
    assert card(es.text, "promised") == "Monto prometido COP 3.500,00 · USD 50,00"
    pt = client.get(f"/ui/metrics?{DAY}", headers={"Accept-Language": "pt-BR,pt;q=0.9"})
    assert '<html lang="pt">' in pt.text and "Taxa de contato" in pt.text
    en = client.get(f"/ui/metrics?{DAY}&lang=en", headers={"Accept-Language": "pt-BR"})
    assert '<html lang="en">' in en.text and "Contact rate" in en.text
    assert en.cookies.get("voiceagent_lang") == "en"
    kept = client.get("/ui/live", headers={"Accept-Language": "pt-BR"})
    assert "Calls in progress" in kept.text  # the cookie wins over Accept-Language
    strings = re.search(r'id="i18n">(.*?)</script>', kept.text, re.S)
    assert strings is not None and '"download_errors"' in strings.group(1)
    client.cookies.delete("voiceagent_lang")
    assert "Llamadas en curso" in client.get("/ui/live?lang=xx").text


def test_call_detail_shows_player_and_transcript_to_supervisors_only(client: TestClient) -> None:
    login(client, "supervisor")
    html = client.get(f"/ui/calls/{RECORDED_CALL}?lang=es").text
    assert (
        f'<audio id="player" controls preload="auto" src="/api/calls/{RECORDED_CALL}/recording"'
        in html
    )
    assert 'id="waveform"' in html and f'data-src="/api/calls/{RECORDED_CALL}/transcript"' in html
    assert "COP 123.456,00" in html and "2026-03-13" in html  # the call's promise
    login(client, "operator")
    html = client.get(f"/ui/calls/{RECORDED_CALL}?lang=en").text
    assert "<audio" not in html and "/transcript" not in html
    assert "Recordings and transcripts are shown to supervisors." in html
    assert "COP 123,456.00" in html
    missing = client.get("/ui/calls/no-such-call")
    assert missing.status_code == 404 and "no-such-call" in missing.text


def _call_ids(html: str) -> list[str]:
    return re.findall(r'<a href="/ui/calls/([\w-]+)">', html)


def test_calls_list_filters_and_pages(
    client: TestClient, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(client, "operator")
    every = _call_ids(client.get("/ui/calls").text)
    assert every == [RECORDED_CALL, "call-10", "call-9", "call-8", "call-7", "call-6", "call-5"]
    assert _call_ids(client.get("/ui/calls?outcome=no_answer").text) == ["call-10"]
    rpc = _call_ids(client.get("/ui/calls?right_party=yes").text)
    assert rpc == [RECORDED_CALL, "call-8", "call-7", "call-6", "call-5"]
    assert _call_ids(client.get("/ui/calls?right_party=no").text) == ["call-10", "call-9"]
    assert _call_ids(client.get("/ui/calls?day=2026-03-05").text) == [RECORDED_CALL]
    c1 = _call_ids(client.get(f"/ui/calls?campaign_id={seeded.ids['c1']}").text)
    assert c1 == every[1:]
    assert _call_ids(client.get(f"/ui/calls?campaign_id={seeded.ids['c2']}").text) == []
    monkeypatch.setattr(pages, "CALLS_PER_PAGE", 3)
    second = client.get("/ui/calls?right_party=yes&page=2&lang=en").text
    assert _call_ids(second) == ["call-6", "call-5"]
    assert "Page 2 of 2" in second
    assert 'href="/ui/calls?right_party=yes&amp;page=1" rel="prev"' in second


def test_promises_page_lists_promises_with_call_links(client: TestClient) -> None:
    login(client, "operator")
    html = client.get("/ui/promises?lang=en").text
    assert html.count("data-promise-id=") == 4
    assert f'<a href="/ui/calls/{RECORDED_CALL}">' in html and "COP 1,000.00" in html
    kept = client.get("/ui/promises?status=kept&lang=en").text
    assert kept.count("data-promise-id=") == 1 and "call-5" in kept


def _upload(client: TestClient, csrf: str, campaign: str) -> dict[str, Any]:
    response = client.post(
        "/api/lists",
        files={"file": ("deudores.csv", csv_with_a_bad_row(len(campaign)).encode(), "text/csv")},
        data={"campaign": campaign, "region": "CO"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _campaign_row(html: str, campaign_id: int) -> str:
    found = re.search(rf'<tr data-campaign-id="{campaign_id}">(.*?)</tr>', html, re.S)
    assert found is not None, campaign_id
    return " ".join(found.group(1).split())


def test_campaigns_page_shows_progress_and_operator_buttons(client: TestClient) -> None:
    csrf = login(client, "operator")
    campaign = _upload(client, csrf, "Abril")["campaign_id"]
    row = _campaign_row(client.get("/ui/campaigns?lang=en").text, campaign)
    assert 'max="2" value="0"' in row and "0 of 2 accounts attempted" in row
    assert 'data-action="start"' in row and "draft" in row
    started = client.post(f"/api/campaigns/{campaign}/start", headers={"X-CSRF-Token": csrf})
    assert started.status_code == 200, started.text
    row = _campaign_row(client.get("/ui/campaigns?lang=en").text, campaign)
    assert 'data-action="pause"' in row and "running" in row
    login(client, "supervisor")
    html = client.get("/ui/campaigns?lang=en").text
    assert "campaign-action" not in html and "0 of 2 accounts attempted" in html


def _live(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/live")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_live_endpoint_reads_the_database_then_the_runner(
    client: TestClient, seeded: Seeded
) -> None:
    login(client, "supervisor")
    empty = _live(client)
    assert (empty["source"], empty["items"]) == ("database", [])
    sessions = session_factory(make_engine(seeded.url))
    with sessions.begin() as s:
        s.add(
            Call(
                id="live-1",
                account_id=seeded.ids["account"],
                direction="inbound",
                dialplan_id="es-419/early",
                dialplan_version="v3",
                status="in_progress",
                started_at=utcnow(),
                timings={},
            )
        )
    try:
        (item,) = _live(client)["items"]
        assert item["call_id"] == "live-1" and item["dialog_state"] is None
        assert 0 <= item["duration_ms"] < 60_000
        session = SimpleNamespace(
            t_ms=42_000,
            conv=SimpleNamespace(state=SimpleNamespace(state="negotiate")),
            result=SimpleNamespace(transcript=[{"speaker": "debtor", "text": "el viernes"}]),
        )
        client.app.state.runner = SimpleNamespace(active={"live-1": session})  # type: ignore[attr-defined]
        body = _live(client)
        assert body["source"] == "runner"
        (item,) = body["items"]
        assert item["dialog_state"] == "negotiate" and item["duration_ms"] == 42_000
        assert item["last_utterance"] == {"speaker": "debtor", "text": "el viernes"}
        login(client, "operator")  # may see live calls but not what was said
        (item,) = _live(client)["items"]
        assert item["dialog_state"] == "negotiate" and item["last_utterance"] is None
    finally:
        del client.app.state.runner  # type: ignore[attr-defined]
        with sessions.begin() as s:
            s.execute(delete(Call).where(Call.id == "live-1"))
    assert _live(client)["items"] == []
    client.cookies.clear()
    assert client.get("/api/live").status_code == 401


def csv_with_a_bad_row(n: int) -> str:
    """Three debtors (distinct for each ``n``); line 3 has a phone number too short to dial."""
    return (
        "name,phone,document,amount_owed,currency,days_past_due\n"
        f"Ana Gómez,+57 300 111 22{n:02d},9{n:02d}1,150000,COP,10\n"
        f"Luis Pérez,12345,9{n:02d}2,90000,COP,20\n"
        f"Rosa Díaz,+57 301 444 55{n:02d},9{n:02d}3,70000,COP,5\n"
    )


def test_error_file_of_an_uploaded_list(client: TestClient) -> None:
    body = _upload(client, login(client, "operator"), "Marzo 2026")
    assert body["imported"] == 2 and [r["line"] for r in body["rejected"]] == [3]
    errors = client.get(f"/ui/lists/{body['call_list_id']}/errors.csv")
    assert errors.status_code == 200 and errors.headers["content-type"].startswith("text/csv")
    header, line, end = errors.text.split("\r\n")
    assert header == "line,error,row" and end == ""
    assert line.startswith(f"3,{body['rejected'][0]['reason']},") and "12345" in line
    login(client, "supervisor")
    assert client.get(f"/ui/lists/{body['call_list_id']}/errors.csv").status_code == 200
    assert client.get("/ui/lists/999/errors.csv").status_code == 404
