"""The dashboard in a real headless Chromium (selenium) against a real uvicorn server.

The server runs in a thread over a seeded SQLite CRM (tests/dashboard/conftest.py). Each test
saves a screenshot under ``$VOICEAGENT_SCREENSHOTS`` (default: a pytest temp dir) and prints
its path. Without chromium/chromedriver these tests skip, and fail under
``VOICEAGENT_REQUIRE_MODELS=1``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import PASSWORD
from tests.crm.conftest import make_account
from tests.dashboard.conftest import RECORDED_CALL, TRANSCRIPT, Seeded, build
from tests.dashboard.test_pages import csv_with_a_bad_row
from tests.model_gate import need
from voiceagent.call.clock import RealTimeClock
from voiceagent.crm.db import make_engine, session_factory
from voiceagent.worker.calls import CallSpec

pytestmark = pytest.mark.browser
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 8.0


class Server:
    """uvicorn serving an app on 127.0.0.1 (a free port) from a thread with its own loop."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.app = app
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop.run_until_complete(self.server.serve(sockets=[self.sock]))

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Seeded]]:
    seeded = build(tmp_path_factory.mktemp("browser"))
    with Server(seeded.app()) as server:
        yield server, seeded


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("VOICEAGENT_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser(site: tuple[Server, Seeded]) -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium, "chromium (Debian package) for the dashboard browser tests")
    need(Path(CHROMEDRIVER), "chromedriver (Debian package) for the dashboard browser tests")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    assert chromium is not None
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except Exception as exc:  # noqa: BLE001  (stale elements while a page redraws)
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} ({last!r})")


def shoot(driver: Any, shots: Path, name: str) -> None:
    path = shots / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")  # noqa: T201  (the test run reports where they are)


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def csp_violations(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security" in e["message"]]


def test_login_then_metrics_match_the_fixture(
    site: tuple[Server, Seeded], browser: Any, shots: Path
) -> None:
    server, seeded = site
    wanted = "/ui/metrics?from=2026-03-02&to=2026-03-02&as_of=2026-03-20&lang=en"
    browser.get(server.url(wanted))
    wait_for(lambda: "/ui/login" in browser.current_url, "the redirect to the login page")
    css(browser, "#login-name").send_keys("admin")
    css(browser, "#login-password").send_keys("wrong password")
    css(browser, "#login-form button[type=submit]").click()
    wait_for(lambda: css(browser, "#login-error").text, "the login error")
    assert "/ui/login" in browser.current_url
    shoot(browser, shots, "01-login")
    css(browser, "#login-password").clear()
    css(browser, "#login-password").send_keys(PASSWORD)
    css(browser, "#login-form button[type=submit]").click()
    wait_for(lambda: "/ui/metrics" in browser.current_url, "the metrics page after login")
    assert browser.execute_script("return document.cookie") == "voiceagent_lang=en"  # HttpOnly
    value = lambda key: css(browser, f'#metric-cards [data-metric="{key}"] .value').text  # noqa: E731
    assert value("attempts") == "11" and value("connected") == "6"
    assert value("tma_s") == "106.0 s" and value("cpc") == "66.7 %"
    assert value("promises") == "3" and value("promised") == "COP 3,500.00 · USD 50.00"
    row = f'#by-campaign tr[data-campaign-id="{seeded.ids["c1"]}"]'
    assert css(browser, f'{row} [data-metric="tmo_s"]').text == "82.1 s"
    assert css(browser, f'{row} [data-metric="kept_rate"]').text == "50.0 %"
    charts = browser.execute_script(
        "return [...document.querySelectorAll('figure.chart svg')].map("
        "s => s.querySelectorAll('circle').length)"
    )
    # a point per day with a value: 03-01 (one busy dial: attempts, connected, contact rate,
    # TMO and promises but no CPC, PTP or TMA) and 03-02 (every series)
    assert charts == [4, 4, 3, 2]
    tips = browser.execute_script(
        "return [...document.querySelectorAll('figure.chart circle title')].map(t => t.textContent)"
    )
    assert "TMA 2026-03-02: 106" in tips and "CPC 2026-03-02: 66.7%" in tips, tips
    shoot(browser, shots, "02-metrics")
    assert csp_violations(browser) == []


def test_upload_a_list_and_see_the_bad_row(
    site: tuple[Server, Seeded], browser: Any, shots: Path, tmp_path: Path
) -> None:
    server, _ = site
    listing = tmp_path / "deudores.csv"
    listing.write_text(csv_with_a_bad_row(7), encoding="utf-8")
    browser.get(server.url("/ui/upload?lang=en"))
    css(browser, "#u-file").send_keys(str(listing))
    css(browser, "#u-campaign").send_keys("Browser upload")
    css(browser, "#u-region").send_keys("co")
    css(browser, "#u-submit").click()
    summary = wait_for(lambda: css(browser, "#u-summary").text, "the import summary")
    assert summary == "Imported: 2. Duplicates: 0. Rejected: 1."
    cells = [c.text for c in browser.find_elements("css selector", "#u-errors tr[data-line] td")]
    assert cells[0] == "3" and "phone" in cells[1].lower(), cells
    assert css(browser, "#u-progress").get_attribute("value") == "100"
    link = css(browser, "#u-error-file").get_attribute("href")
    assert link.endswith("/errors.csv")
    shoot(browser, shots, "03-upload")
    assert csp_violations(browser) == []


def test_play_the_recording_and_seek_from_the_transcript(
    site: tuple[Server, Seeded], browser: Any, shots: Path
) -> None:
    from selenium.webdriver.common.keys import Keys

    server, _ = site
    browser.get(server.url(f"/ui/calls/{RECORDED_CALL}?lang=en"))
    lines = wait_for(
        lambda: browser.find_elements("css selector", "#transcript button.seek"),
        "the transcript lines",
    )
    assert [b.text.split(": ", 1)[1] for b in lines] == [t["text"] for t in TRANSCRIPT]
    wait_for(lambda: css(browser, "#waveform").get_attribute("data-drawn"), "the waveform")
    lanes = browser.execute_script(
        "const c = document.getElementById('waveform'), x = c.getContext('2d');"
        "const ink = (y) => x.getImageData(0, y, c.width, 1).data.filter((v, i) => i % 4 === 3"
        " && v > 0).length; return [ink(c.height / 4), ink(3 * c.height / 4)];"
    )
    assert lanes[0] > 50 and lanes[1] > 50, lanes  # both lanes have sound on their midline
    wait_for(lambda: browser.execute_script("return player.duration > 7"), "the audio metadata")
    css(browser, "#waveform").send_keys(Keys.SPACE)  # the waveform's keyboard play/pause
    wait_for(
        lambda: browser.execute_script("return !player.paused && player.currentTime > 0.1"),
        "playback to start",
    )
    target = TRANSCRIPT[3]["start_ms"] / 1000
    lines[3].click()
    now = browser.execute_script("return player.currentTime")
    assert abs(now - target) < 0.3, (now, target)
    wait_for(lambda: "current" in lines[3].get_attribute("class"), "the line to be highlighted")
    shoot(browser, shots, "04-call-detail")
    lines[1].send_keys(Keys.ENTER)  # keyboard works too
    now = browser.execute_script("return player.currentTime")
    assert abs(now - TRANSCRIPT[1]["start_ms"] / 1000) < 0.3, now
    assert csp_violations(browser) == []


LIVE_SCRIPT = ["sí, con ella habla", "<hangup>"]
"""The debtor answers, then hangs up when asked for their document: about 19 s of real time."""


def test_a_live_call_appears_then_goes(
    site: tuple[Server, Seeded], browser: Any, shots: Path, tmp_path: Path
) -> None:
    """A real ``CallSession`` (fake ASR/TTS, simulated debtor) runs in the server's loop."""
    from tests.worker.test_runner import debtor, runner_for

    need(shutil.which("espeak-ng"), "espeak-ng (makes the simulated debtor's voice)")
    server, seeded = site
    sessions = session_factory(make_engine(seeded.url))
    with sessions.begin() as s:
        account, phone = make_account(s, ref="A-live", e164="+573009998877")
        account.days_past_due = 12  # routing.yaml: es-419 early collections
        spec = CallSpec("outbound", account_id=account.id, phone_id=phone.id)
    runner = runner_for(sessions, tmp_path, [t for t in LIVE_SCRIPT if not t.startswith("<")])
    browser.get(server.url("/ui/live?lang=en"))
    wait_for(lambda: css(browser, "#live-updated").text, "the first refresh")
    assert browser.find_elements("css selector", "#live-rows tr") == []
    server.app.state.runner = runner
    line = debtor(LIVE_SCRIPT)
    call = asyncio.run_coroutine_threadsafe(
        runner.run(line, spec, clock=RealTimeClock()), server.loop
    )
    try:
        started = time.monotonic()
        row = wait_for(lambda: css(browser, "#live-rows tr[data-call-id]"), "the live row", 5)
        assert time.monotonic() - started < 5
        call_id = row.get_attribute("data-call-id")
        assert call_id in runner.active
        cell = lambda name: css(browser, f'tr[data-call-id="{call_id}"] .{name}').text  # noqa: E731
        assert cell("dialog-state") in ("greeting", "verify_document"), cell("dialog-state")
        wait_for(lambda: cell("last").startswith("Agent: "), "the agent's last utterance")
        before = cell("duration")
        wait_for(lambda: cell("duration") > before, "the duration to tick", 3)
        shoot(browser, shots, "05-live")
        outcome = call.result(timeout=45)
        assert outcome.call_id == call_id and outcome.outcome == "hangup"
        wait_for(
            lambda: not browser.find_elements("css selector", f'tr[data-call-id="{call_id}"]'),
            "the ended call to leave the table",
            5,
        )
    finally:
        call.cancel()
        del server.app.state.runner
    assert css(browser, "#live-empty").is_displayed()
    assert csp_violations(browser) == []


def test_campaign_start_and_the_other_pages(
    site: tuple[Server, Seeded], browser: Any, shots: Path
) -> None:
    server, seeded = site
    browser.get(server.url("/ui/campaigns?lang=en"))
    c2 = f'tr[data-campaign-id="{seeded.ids["c2"]}"]'
    css(browser, f'{c2} button[data-action="start"]').click()
    wait_for(
        lambda: css(browser, f"{c2} .badge").get_attribute("data-status") == "running",
        "the campaign to run",
    )
    assert css(browser, f'{c2} button[data-action="pause"]').is_displayed()
    shoot(browser, shots, "06-campaigns")
    browser.get(server.url("/ui/calls?lang=en"))
    assert len(browser.find_elements("css selector", "#calls tbody tr")) >= 7
    shoot(browser, shots, "07-calls")
    browser.get(server.url("/ui/promises?lang=en"))
    assert len(browser.find_elements("css selector", "#promises tbody tr")) == 4
    shoot(browser, shots, "08-promises")
    browser.get(server.url("/ui/live?lang=pt"))
    wait_for(lambda: css(browser, "#live-updated").text.startswith("Atualizado"), "pt text")
    assert css(browser, "h1").text == "Chamadas em andamento"
    assert csp_violations(browser) == []
    css(browser, "#logout").click()
    wait_for(lambda: "/ui/login" in browser.current_url, "the login page after logout")
    browser.get(server.url("/ui/metrics"))
    assert "/ui/login" in browser.current_url
