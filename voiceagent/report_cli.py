"""``voiceagent report``: the supervisor's figures on the command line (table or CSV)."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import typer

from voiceagent.db_cli import UrlOption, database_url
from voiceagent.dialer.besthours_cli import best_hours_cmd

report_app = typer.Typer(
    help="Metrics per campaign and day (TMA, TMO, CPC, promises...), and the best hours to call.",
    invoke_without_command=True,
)
report_app.command("best-hours")(best_hours_cmd)

COLUMNS = (
    "attempts", "connected", "contact_rate", "right_party", "cpc", "tma_s", "tmo_s",
    "promises", "ptp_rate", "promised_minor", "kept_rate", "transfers", "callbacks",
    "stop_contacts", "abandon_rate", "avg_turn_latency_ms",
)  # fmt: skip


def _day(value: str | None, default: date) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


def _cell(value: Any) -> str:
    if value is None:
        return "-"  # no denominator: never shown as 0
    if isinstance(value, dict):
        return " ".join(f"{k} {v}" for k, v in sorted(value.items())) or "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@report_app.callback()
def report(
    ctx: typer.Context,
    campaign: Annotated[str | None, typer.Option(help="Campaign name (default: all).")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (UTC; default: today).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="Last day, inclusive (default: --from).")] = None,
    by: Annotated[str, typer.Option(help="Comma-separated: day, campaign, portfolio, ...")] = "day",
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    database_url_: UrlOption = None,
) -> None:
    """Print the metrics of the dials in a date range, grouped (see README: Metrics)."""
    if ctx.invoked_subcommand is not None:
        return
    from sqlalchemy import select

    from voiceagent.crm.db import make_engine, session_factory
    from voiceagent.crm.models import Campaign
    from voiceagent.reporting import compute

    first = _day(from_, datetime.now(UTC).date())
    last = _day(to, first)
    if last < first:
        raise typer.BadParameter("--to is before --from")
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    group_by = [g.strip() for g in by.split(",") if g.strip()]
    engine = make_engine(database_url(database_url_))
    try:
        with session_factory(engine)() as s:
            campaign_id = None
            if campaign is not None:
                campaign_id = s.scalar(select(Campaign.id).where(Campaign.name == campaign))
                if campaign_id is None:
                    typer.echo(f"error: no campaign {campaign!r}", err=True)
                    raise typer.Exit(1)
            frm = datetime.combine(first, time(), UTC)
            until = datetime.combine(last + timedelta(days=1), time(), UTC)
            try:
                rows = compute(s, frm, until, group_by, campaign_id=campaign_id)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
    finally:
        engine.dispose()
    records = [{**r.group, **{c: getattr(r, c) for c in COLUMNS}} for r in rows]
    if fmt == "json":
        typer.echo(json.dumps(records, default=str, indent=1))
    elif fmt == "csv":
        out = csv.writer(sys.stdout)
        out.writerow([*group_by, *COLUMNS])
        for rec in records:
            out.writerow([_cell(rec.get(c)) for c in (*group_by, *COLUMNS)])
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*group_by, *COLUMNS, title=f"{first} .. {last}")
        for rec in records:
            table.add_row(*(_cell(rec.get(c)) for c in (*group_by, *COLUMNS)))
        Console(width=240).print(table)
