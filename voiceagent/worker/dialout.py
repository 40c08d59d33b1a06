"""One outbound call by hand: ``voiceagent dial NUMBER --account-id N`` (no campaign needed).

Registers the SIP endpoint, renders the account's prompts while the phone rings, dials, and
once a person (or nobody clear) answers runs the dialog; a machine gets the voicemail.
"""

from __future__ import annotations

from voiceagent.config import Settings
from voiceagent.telephony.sipconfig import DialResult
from voiceagent.worker.calls import CallOutcome, CallRunner, CallSpec
from voiceagent.worker.serve import build_runner, sip_config


async def dial_once(
    settings: Settings,
    number: str,
    account_id: int,
    ring_timeout_s: float = 30.0,
    runner: CallRunner | None = None,
) -> CallOutcome | DialResult:
    """Place one call for an account and run it to the end."""
    import asyncio

    from voiceagent.telephony.pyvoip import SipEndpoint

    if not settings.sip_registrar:
        raise ValueError("no SIP registrar configured (VOICEAGENT_SIP_REGISTRAR)")
    own_runner = runner is None
    runner = runner or build_runner(settings)
    endpoint = SipEndpoint(sip_config(settings))
    await endpoint.start()
    try:
        spec = CallSpec("outbound", account_id=account_id, transport_ref=f"dial {number}")
        # Ringing and preparing happen together: the greeting is ready when the callee answers.
        preparing = asyncio.ensure_future(runner.prepare(spec))
        dialled = await endpoint.dial(number, ring_timeout_s)
        prepared = await preparing
        if isinstance(dialled, DialResult):
            return dialled
        return await runner.run(dialled, spec, prepared=prepared, amd=True)
    finally:
        await endpoint.stop()
        if own_runner:
            runner.engines.shutdown()
