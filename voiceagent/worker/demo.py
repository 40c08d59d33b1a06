"""The demo campaign: real calls through the whole stack, to simulated debtors.

On a fresh install ``voiceagent serve`` imports a small call list (the real importer), starts a
campaign under the ``ZZ`` pack (simulated lines: no calling windows, since nobody real is
called) and runs the real dialer against a simulated telephone network: some lines ring out,
some are busy, some are answering machines with a beep, and the rest are debtors who speak a
persona's lines (espeak-ng or a second Piper voice, never the agent's). Every answered call
runs the real pipeline in real time (VAD, recognizer, dialog, Piper, recording, CRM), so the
dashboard fills with live calls, recordings, transcripts, promises and metrics.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import random
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from voiceagent.call.clock import RealTimeClock
from voiceagent.crm.models import Campaign
from voiceagent.dialer.queue import Outcome, Reservation
from voiceagent.telephony.simulated import SimulatedDebtor
from voiceagent.worker.calls import CallRunner, CallSpec
from voiceagent.worker.placing import connect

log = logging.getLogger(__name__)
DEMO_CAMPAIGN = "demo"
DEMO_DATA = Path(__file__).with_name("demo.yaml")
_NAMES = {
    "CO": ["María Fernanda López", "Juan Carlos Pérez", "Luisa Gómez", "Andrés Rojas",
           "Camila Torres", "Santiago Herrera", "Valentina Castro", "Diego Ruiz"],
    "BR": ["Ana Paula Souza", "João Pereira", "Mariana Costa", "Lucas Almeida"],
    "US": ["John Smith", "Mary Johnson", "Robert Brown", "Linda Davis"],
}  # fmt: skip
_PHONES = {"CO": "+57300555{:04d}", "BR": "+551199555{:04d}", "US": "+1202555{:04d}"}
_CURRENCY = {
    "CO": ("COP", 150_000, 2_400_000),
    "BR": ("BRL", 300, 4_000),
    "US": ("USD", 200, 3_000),
}


@lru_cache(maxsize=1)
def demo_data() -> dict[str, Any]:
    """Personas, voicemail greetings and line behaviour (``demo.yaml``)."""
    data: dict[str, Any] = YAML(typ="safe").load(DEMO_DATA.read_text(encoding="utf-8"))
    return data


def write_demo_list(path: Path, seed: int = 11) -> Path:
    """A small call list as a CSV (the importer reads it like any uploaded list)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["name", "phone", "document", "amount_owed", "currency", "days_past_due",
                      "country", "portfolio", "birth_year"])  # fmt: skip
        n = 0
        for country, names in _NAMES.items():
            currency, low, high = _CURRENCY[country]
            for name in names:
                n += 1
                out.writerow([
                    name, _PHONES[country].format(100 + n), f"{rng.randint(10**7, 10**9)}",
                    str(rng.randrange(low, high, 50)), currency, str(rng.choice([5, 12, 20, 25])),
                    country, f"demo-{country.lower()}", str(rng.randint(1960, 2000)),
                ])  # fmt: skip
    return path


def seed_demo(engine: Engine, sessions: sessionmaker[Session], data_dir: Path) -> int:
    """Import the demo list and start the demo campaign once; return the campaign id."""
    from voiceagent.dialer import campaigns
    from voiceagent.dialer.importer import import_list

    with sessions() as s:
        found = s.scalar(select(Campaign).where(Campaign.name == DEMO_CAMPAIGN))
    if found is None:
        path = write_demo_list(data_dir / "demo" / "demo-list.csv")
        result = import_list(engine, path, DEMO_CAMPAIGN, creditor="Banco Demo", workers=0)
        log.info("demo: %d accounts imported", result.imported)
        config = campaigns.CampaignConfig(
            max_channels=2,
            jurisdiction="ZZ",
            retry={
                "busy": campaigns.RetryRule(delay_s=60, max_attempts=3),
                "no_answer": campaigns.RetryRule(delay_s=90, max_attempts=3),
                "failed": campaigns.RetryRule(delay_s=120, max_attempts=2),
                "machine": campaigns.RetryRule(delay_s=180, max_attempts=2),
                "abandoned": campaigns.RetryRule(delay_s=120, max_attempts=2),
            },
        )
        with sessions.begin() as s:
            campaigns.configure(s, DEMO_CAMPAIGN, config)
    with sessions.begin() as s:
        campaign = campaigns.get(s, DEMO_CAMPAIGN)
        if campaign.status in ("draft", "paused"):
            campaigns.start(s, DEMO_CAMPAIGN)
        return campaign.id


class SimulatedPlacer:
    """The demo's telephone network: ring-outs, busy lines, machines and debtors who talk."""

    def __init__(
        self,
        runner: CallRunner,
        debtor_voice: Callable[[str], Callable[[str], bytes]],
        seed: int = 7,
    ) -> None:
        self.runner = runner
        self.debtor_voice = debtor_voice
        """``locale -> speak(text)``: PCM16 8 kHz, never the agent's voice."""
        self.random = random.Random(seed)
        self.placed = 0

    async def __call__(self, reservation: Reservation) -> Outcome:
        """Ring a few seconds, then: no answer, busy, a machine, or a person."""
        mix = demo_data()["lines"]
        self.placed += 1
        turn = self.placed  # this call's number (others start while it rings)
        # The first calls are answered by people, so promises show up in the first minutes.
        roll = self.random.random() if turn > 2 else 1.0
        await asyncio.sleep(self.random.uniform(2.0, 5.0))  # ringing
        if roll < mix["no_answer"]:
            return Outcome("no_answer", sip_code=480)
        if roll < mix["no_answer"] + mix["busy"]:
            return Outcome("busy", sip_code=486)
        spec = CallSpec(
            "outbound", account_id=reservation.account_id, phone_id=reservation.phone_id
        )
        prepared = await self.runner.prepare(spec)
        if prepared is None:
            return Outcome("failed")
        locale = prepared.plan.dialplan.locale
        machine = roll < mix["no_answer"] + mix["busy"] + mix["machine"]
        if machine:
            script = [demo_data()["voicemail_greeting"][locale], "<silence>"]
        else:
            personas = demo_data()["personas"][locale]
            order = [p for p in demo_data()["persona_order"] if p in personas]
            script = list(personas[order[(turn - 1) % len(order)]])
        account = prepared.account
        keyed = {"<document>": f"<dtmf {account.document_last4}>",
                 "<birth_year>": _year_in_words(account.birth_year or 1980, locale)}  # fmt: skip
        line = SimulatedDebtor(
            [keyed.get(t, t) for t in script], speaks_first=True, beep_after_first=machine
        )
        loop = asyncio.get_running_loop()
        speak = self.debtor_voice(locale)
        await loop.run_in_executor(self.runner.engines.pools.tts, line.prepare, speak)
        return await connect(
            self.runner, line, reservation, prepared=prepared, clock=RealTimeClock()
        )


def _year_in_words(year: int, locale: str) -> str:
    """How a person says a year ("nineteen seventy-five")."""
    from num2words import num2words

    return str(num2words(year, lang=locale.split("-")[0], to="year"))


def default_debtor_voice(locale: str) -> Callable[[str], bytes]:
    """espeak-ng when installed, else Piper's joe weights slowed down (not the agent's pace)."""
    import shutil

    from voiceagent.call.simulate import debtor_voice

    if locale.startswith("en") or shutil.which("espeak-ng"):
        return debtor_voice(locale)
    from voiceagent.tts.piper import default_voice

    return default_voice(locale).with_params(length_scale=1.2, noise_scale=0.5).synthesize_clause


def ensure_demo_login(sessions: sessionmaker[Session]) -> str | None:
    """On a database with no users, create ``admin`` with a random password; return it.

    The password is shown once, on the console that started the server; only its hash is kept.
    """
    import secrets

    from voiceagent.api.auth import hash_password
    from voiceagent.crm.models import User
    from voiceagent.crm.types import utcnow

    with sessions.begin() as s:
        if s.scalar(select(User.id).limit(1)) is not None:
            return None
        password = secrets.token_urlsafe(9)
        s.add(
            User(
                name="admin",
                role="admin",
                password_hash=hash_password(password),
                active=True,
                created_at=utcnow(),
            )
        )
    return password


async def run_demo(
    engine: Engine, sessions: sessionmaker[Session], runner: CallRunner, data_dir: Path
) -> None:
    """Seed the demo (once) and dial it until cancelled."""
    from voiceagent.dialer.worker import DialerWorker

    loop = asyncio.get_running_loop()
    campaign_id = await loop.run_in_executor(
        runner.engines.pools.io, seed_demo, engine, sessions, data_dir
    )
    placer = SimulatedPlacer(runner, default_debtor_voice)
    worker = DialerWorker(
        sessions, campaign_id, placer, seats=2, tick_s=0.5, routing=runner.routing
    )
    log.info("demo campaign %r dialling simulated debtors", DEMO_CAMPAIGN)
    await worker.run()
