"""``voiceagent report best-hours``: the best local hours to call, per portfolio and locale.

Register with ``report_app.command("best-hours")(best_hours_cmd)``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _report(
    session: Any, portfolio: str | None, days: int, top: int, min_attempts: int
) -> dict[str, Any]:
    from sqlalchemy import select

    from voiceagent.crm.models import Portfolio
    from voiceagent.dialer.besthours import BestHours

    folio_ids = None
    if portfolio is not None:
        folio_ids = list(session.scalars(select(Portfolio.id).where(Portfolio.name == portfolio)))
        if not folio_ids:
            raise LookupError(f"no portfolio named {portfolio!r}")
    now = datetime.now(UTC)
    model = BestHours.fit(
        session,
        now=now,
        lookback_days=days,
        min_account_attempts=min_attempts,
        portfolio_ids=folio_ids,
    )
    segments = []
    for key, profile in sorted(model.segments.items(), key=lambda kv: -kv[1].counts.attempts):
        cells = sorted(model.segment_estimates(key), key=lambda e: (-e.p_rpc, -e.p_answer))
        segments.append(
            {
                "portfolio": model.segment_names.get(key, str(key[0])),
                "locale": key[1],
                "attempts": profile.counts.attempts,
                "answer_rate": round(profile.base_answer, 4),
                "rpc_rate": round(profile.base_rpc, 4),
                "best": [
                    {
                        "weekday": e.weekday,
                        "hour": e.hour,
                        "p_answer": round(e.p_answer, 4),
                        "p_rpc": round(e.p_rpc, 4),
                        "attempts": e.attempts,
                    }
                    for e in cells[:top]
                ],
            }
        )
    return {
        "generated_at": now.isoformat(),
        "lookback_days": days,
        "attempts": model.overall.counts.attempts,
        "segments": segments,
    }


def best_hours_cmd(
    portfolio: Annotated[str | None, typer.Option(help="Only this portfolio (by name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    days: Annotated[int, typer.Option(help="Look-back window in days.")] = 90,
    top: Annotated[int, typer.Option(help="Best cells to list per segment.")] = 10,
    min_account_attempts: Annotated[
        int, typer.Option(help="Attempts an account needs for its own profile.")
    ] = 20,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [default: the settings' database].")
    ] = None,
) -> None:
    """Estimated answer and right-party-contact rates by local weekday and hour, best first."""
    from voiceagent.config import get_settings
    from voiceagent.crm.db import make_engine, session_factory

    engine = make_engine(database_url or get_settings().resolved_database_url())
    try:
        with session_factory(engine)() as s:
            out = _report(s, portfolio, days, top, min_account_attempts)
    except LookupError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    typer.echo(f"{out['attempts']} attempts in the last {days} days (local time of each debtor)")
    for seg in out["segments"]:
        typer.echo(
            f"\n{seg['portfolio']} / {seg['locale']}: {seg['attempts']} attempts, "
            f"answer {seg['answer_rate']:.1%}, right party {seg['rpc_rate']:.1%}"
        )
        typer.echo("  day  hour  p_rpc   p_answer  attempts")
        for c in seg["best"]:
            typer.echo(
                f"  {_DAYS[c['weekday']]}  {c['hour']:02d}h  {c['p_rpc']:6.1%}  "
                f"{c['p_answer']:7.1%}  {c['attempts']:>8}"
            )
