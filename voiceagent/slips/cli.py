"""``voiceagent slips``: deliver the payment slips calls asked for, and show how that went."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import asdict
from typing import Annotated, Any, NoReturn

import typer

slips_app = typer.Typer(
    help="Payment slips: deliver pending ones (e-mail / SMS), show delivery status.",
    no_args_is_help=True,
)
UrlOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL [default: the settings' database].")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _config() -> Any:
    from voiceagent.config import get_settings
    from voiceagent.slips.deliver import SlipConfig

    return SlipConfig.from_settings(get_settings())


@slips_app.command()
def run(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep polling for new slips until interrupted.")
    ] = False,
    max_wait_s: Annotated[
        float, typer.Option(help="Without --follow: how long to wait for due retries.")
    ] = 60.0,
    database_url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver the slips that are due (once, waiting up to --max-wait-s for retries)."""
    from voiceagent.config import get_settings
    from voiceagent.crm.db import make_engine, session_factory, upgrade
    from voiceagent.slips.deliver import SlipDispatcher
    from voiceagent.slips.outbox import DispatcherBusy
    from voiceagent.slips.render import SlipConfigError

    engine = make_engine(database_url or get_settings().resolved_database_url())
    try:
        upgrade(engine)
        dispatcher = SlipDispatcher(session_factory(engine), _config())
        if follow:
            asyncio.run(dispatcher.run())
            return
        try:
            summary = asyncio.run(dispatcher.drain(max_wait_s))
        finally:
            dispatcher.close()
    except (DispatcherBusy, SlipConfigError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    finally:
        engine.dispose()
    out = {
        "registered": summary.registered,
        "sent": summary.sent,
        "retrying": summary.retrying,
        "failed": summary.failed,
        "outstanding": summary.outstanding,
    }
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(" ".join(f"{k}={v}" for k, v in out.items()))
    if summary.outstanding:
        raise typer.Exit(1)


@slips_app.command()
def status(
    show_all: Annotated[
        bool, typer.Option("--all", help="List sent deliveries too (kept for 30 days).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Counts per delivery status, then every delivery not yet sent (recipients masked)."""
    from voiceagent.slips.outbox import STATUSES, OutboxFile

    config = _config()
    try:
        state = OutboxFile(config.state_file).load()
    except ValueError as exc:
        _fail(str(exc))
    counts = Counter(d.status for d in state.deliveries.values())
    listed = [d for _, d in sorted(state.deliveries.items()) if show_all or d.status != "sent"]
    if as_json:
        doc = {
            "state_file": str(config.state_file),
            "cursor": state.cursor,
            "counts": dict(counts),
            "deliveries": [asdict(d) for d in listed],
        }
        typer.echo(json.dumps(doc, ensure_ascii=False))
        return
    typer.echo(f"{config.state_file} (cursor: event {state.cursor})")
    typer.echo("  ".join(f"{k}: {counts.get(k, 0)}" for k in STATUSES))
    for d in listed:
        when = d.sent_at or d.next_at or d.updated_at
        typer.echo(
            f"evt_{d.event_id:<8} {d.channel:<8} {d.status:<9} tries={d.attempts} "
            f"to={d.to or '-'} at={when} {d.reason or ''}".rstrip()
        )


@slips_app.command()
def retry(
    event_ids: Annotated[
        list[int] | None, typer.Argument(help="Event ids to requeue [default: every failed].")
    ] = None,
) -> None:
    """Put failed deliveries back in the queue (after fixing an address or the settings)."""
    from voiceagent.crm.types import utcnow
    from voiceagent.slips.outbox import DispatcherBusy, requeue

    try:
        done = requeue(_config().state_file, event_ids or None, utcnow())
    except DispatcherBusy as exc:
        _fail(f"{exc}; stop it first")
    typer.echo(f"requeued {len(done)}: {' '.join(f'evt_{i}' for i in done)}".rstrip(": "))
