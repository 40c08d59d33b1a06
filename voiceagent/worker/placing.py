"""Placing the dialer's reserved calls: over SIP, or to simulated debtors (the demo).

Each placer is the dialer's ``place_call(reservation) -> Outcome``: dial, and once answered,
re-check the compliance rules at connect time before the callee hears a word, then run the
call (answering-machine detection first) through the worker's runner.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from voiceagent.dialer.queue import Outcome, Reservation
from voiceagent.telephony.base import CallTransport
from voiceagent.telephony.sipconfig import DialResult
from voiceagent.worker.calls import CallRunner, CallSpec

log = logging.getLogger(__name__)

SIMULATED_JURISDICTION = "ZZ"
"""The compliance pack of simulated lines (the demo): never dialled over real telephony."""
_DIAL_RESULTS = {
    DialResult.BUSY: "busy",
    DialResult.NO_ANSWER: "no_answer",
    DialResult.FAILED: "failed",
    DialResult.REJECTED: "rejected",
}


async def connect(
    runner: CallRunner, transport: CallTransport, reservation: Reservation, **run_args: object
) -> Outcome:
    """An answered call: connect-time check, then the conversation (or a polite hang-up)."""
    answered_at = datetime.now(UTC)
    if reservation.connect_check is not None:
        verdict = await reservation.connect_check(answered_at)
        if not verdict.allowed:
            log.info("attempt %d aborted at connect: %s", reservation.attempt_id, verdict.rule)
            await transport.hangup()
            return Outcome(
                "aborted", answered_at=answered_at, next_allowed_at=verdict.next_allowed_at
            )
    spec = CallSpec(
        "outbound",
        account_id=reservation.account_id,
        phone_id=reservation.phone_id,
        attempt_id=reservation.attempt_id,
        transport_ref=f"attempt {reservation.attempt_id}",
    )
    done = await runner.run(transport, spec, amd=True, **run_args)  # type: ignore[arg-type]
    result = "machine" if done.outcome in ("machine", "voicemail_left", "screened") else "answered"
    return Outcome(result, answered_at=answered_at, call_id=done.call_id)


class SipPlacer:
    """Dials reservations through the worker's SIP endpoint."""

    def __init__(self, runner: CallRunner, endpoint: object, ring_timeout_s: float = 30.0) -> None:
        self.runner = runner
        self.endpoint = endpoint
        self.ring_timeout_s = ring_timeout_s

    async def __call__(self, reservation: Reservation) -> Outcome:
        """Dial; answered calls run through the runner (their clock is the line's pace)."""
        if reservation.jurisdiction.upper() == SIMULATED_JURISDICTION:
            log.error(
                "attempt %d: campaign %d uses the simulated-lines pack; not dialling a real number",
                reservation.attempt_id,
                reservation.campaign_id,
            )
            return Outcome("failed")
        dialled = await self.endpoint.dial(reservation.e164, self.ring_timeout_s)  # type: ignore[attr-defined]
        if isinstance(dialled, DialResult):
            return Outcome(_DIAL_RESULTS[dialled])
        return await connect(self.runner, dialled, reservation)
