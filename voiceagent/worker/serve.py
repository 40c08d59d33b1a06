"""``voiceagent serve``: the HTTP API, the SIP endpoint and the AudioSocket server on one loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from voiceagent.config import Settings
from voiceagent.crm.db import make_engine, session_factory
from voiceagent.dialog.routing import load_routing
from voiceagent.telephony.sipconfig import SipConfig
from voiceagent.worker.calls import CallRunner, CallSpec
from voiceagent.worker.engines import Engines

log = logging.getLogger(__name__)


def sip_config(settings: Settings) -> SipConfig:
    """The SIP endpoint's settings from the process settings."""
    return SipConfig(
        registrar_host=settings.sip_registrar,
        registrar_port=settings.sip_registrar_port,
        user=settings.sip_user,
        password=settings.sip_password,
        bind_address=settings.sip_bind,
        advertised_address=settings.sip_advertised,
        sip_port=settings.sip_port,
        rtp_port_low=settings.rtp_port_low,
        rtp_port_high=settings.rtp_port_high,
        max_calls=settings.max_calls,
        outbound_proxy=settings.sip_outbound_proxy,
        media_networks=tuple(settings.sip_media_networks),
        allowed_sources=tuple(settings.sip_allowed_sources),
        served_numbers=tuple(settings.sip_served_numbers),
    )


def build_runner(settings: Settings) -> CallRunner:
    """The call runner with this process's engines, database and dialplans."""
    sessions = session_factory(make_engine(settings.resolved_database_url()))
    return runner_for(settings, sessions)


def runner_for(settings: Settings, sessions: Any) -> CallRunner:
    """The call runner over an existing session factory."""
    engines = Engines(
        asr=settings.asr, models_dir=settings.models_path, cache_dir=settings.tts_cache_dir
    )
    routing = load_routing(settings.dialplans_dir / "routing.yaml")
    return CallRunner(
        engines,
        sessions,
        routing,
        settings.dialplans_dir,
        settings.recordings_dir,
        fallback_transfer=settings.inbound_fallback_transfer,
        region=settings.default_region,
    )


@dataclass
class Telephony:
    """What ``start_telephony`` started (None: not enabled)."""

    sip: Any = None
    audiosocket: Any = None
    ami: Any = None


async def start_telephony(
    settings: Settings, runner: CallRunner, stack: AsyncExitStack
) -> Telephony:
    """Start whichever telephony the settings enable; the stack stops them."""
    started = Telephony()
    if settings.sip_registrar:
        from voiceagent.telephony.pyvoip import SipEndpoint
        from voiceagent.telephony.sipcall import SipCall

        async def on_sip_call(call: SipCall) -> None:
            spec = CallSpec("inbound", caller_id=call.caller_id, transport_ref=call.call_id)
            await runner.run(call, spec)

        endpoint = SipEndpoint(sip_config(settings), on_sip_call)
        await endpoint.start()
        stack.push_async_callback(endpoint.stop)
        started.sip = endpoint
        log.info("SIP: registered as %s@%s", settings.sip_user, settings.sip_registrar)
    if settings.audiosocket:
        from voiceagent.telephony.audiosocket import (
            AudioSocketConfig,
            AudioSocketServer,
            AudioSocketTransport,
        )

        ami = started.ami = await _start_ami(settings, stack)

        async def on_audiosocket_call(transport: AudioSocketTransport, call_uuid: str) -> None:
            # AudioSocket carries no caller ID: [from-carrier] publishes it for AMI to read.
            caller = ""
            if ami is not None:
                try:
                    caller = await ami.caller_id(call_uuid)
                except (OSError, TimeoutError, RuntimeError) as exc:
                    log.warning("call %s: caller ID not available over AMI: %s", call_uuid, exc)
            spec = CallSpec("inbound", caller_id=caller, transport_ref=call_uuid)
            await runner.run(transport, spec)

        hook = None
        if ami is not None:
            from voiceagent.telephony.ami import transfer_hook

            hook = transfer_hook(ami)
        server = AudioSocketServer(
            on_audiosocket_call,
            AudioSocketConfig(host=settings.audiosocket_host, port=settings.audiosocket_port),
            on_transfer=hook,
        )
        await server.start()
        stack.push_async_callback(server.close, 5.0)
        started.audiosocket = server
    return started


async def _start_ami(settings: Settings, stack: AsyncExitStack) -> Any:
    """The Asterisk Manager client (transfers, caller IDs, originating), when configured."""
    if not settings.ami_host:
        log.warning("no AMI configured: transfers behind Asterisk end in a hang-up")
        return None
    from voiceagent.telephony.ami import AmiClient

    # Under the AudioSocket server's 3 s transfer timeout, so an AMI error is logged first.
    ami = AmiClient(
        settings.ami_host,
        settings.ami_port,
        settings.ami_username,
        settings.ami_secret,
        timeout_s=2.5,
    )
    await ami.start()
    stack.push_async_callback(ami.close)
    return ami


async def serve(settings: Settings, app: Any) -> None:
    """Run until interrupted (Ctrl-C / SIGTERM): API, telephony, calls."""
    import uvicorn

    engine = make_engine(settings.resolved_database_url())
    sessions = session_factory(engine)
    runner = runner_for(settings, sessions)
    app.state.runner = runner
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port))
    async with AsyncExitStack() as stack:
        stack.callback(engine.dispose)
        stack.callback(runner.engines.shutdown)
        await start_telephony(settings, runner, stack)
        background: list[asyncio.Task[None]] = [_start_slips(settings, sessions)]
        if settings.demo_enabled:
            background.append(await _start_demo(settings, engine, sessions, runner))
        try:
            await server.serve()
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _start_slips(settings: Settings, sessions: Any) -> asyncio.Task[None]:
    """The payment-slip dispatcher (one per data dir; it holds a lock while it runs)."""
    from voiceagent.slips.deliver import SlipConfig, SlipDispatcher

    dispatcher = SlipDispatcher(sessions, SlipConfig.from_settings(settings))
    task = asyncio.create_task(dispatcher.run(), name="slips")
    task.add_done_callback(_report_end("slip dispatcher"))
    return task


async def _start_demo(
    settings: Settings, engine: Any, sessions: Any, runner: CallRunner
) -> asyncio.Task[None]:
    """The demo campaign as a background task (its calls show up on the dashboard)."""
    from voiceagent.worker.demo import ensure_demo_login, run_demo

    loop = asyncio.get_running_loop()
    password = await loop.run_in_executor(None, ensure_demo_login, sessions)
    url = f"http://{settings.host}:{settings.port}/"
    if password is not None:
        log.warning("dashboard: %s  user: admin  password: %s  (shown once)", url, password)
    else:
        log.warning("dashboard: %s (log in with your user)", url)
    task = asyncio.create_task(run_demo(engine, sessions, runner, settings.data_dir))
    task.add_done_callback(_report_end("demo campaign"))
    return task


def _report_end(what: str) -> Any:
    def report(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %s", what, task.exception())

    return report
