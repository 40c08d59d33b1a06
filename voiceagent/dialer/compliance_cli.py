"""``voiceagent compliance``: check a moment against a jurisdiction's rules, list the packs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from voiceagent.dialer import rules as r
from voiceagent.dialer.packs import PackError, get_pack, load_packs

if TYPE_CHECKING:  # the CRM is imported only for --account, so that --help stays fast
    from voiceagent.dialer.ledger import Subject

compliance_app = typer.Typer(
    help="Compliance rule packs: may this debtor be called now, and if not, when?",
    no_args_is_help=True,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def parse_at(text: str | None, tz: str) -> datetime:
    """``--at``: ISO 8601; local time in ``tz`` unless it has an offset; ``None`` is now."""
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--at: expected ISO 8601 such as 2026-12-08T10:00, got {text!r}")
    if at.tzinfo is None:
        at = at.replace(tzinfo=r.zone(tz))
    return at.astimezone(UTC)


def _pack(jurisdiction: str) -> r.Pack:
    try:
        return get_pack(jurisdiction)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    except PackError as exc:
        _fail(f"invalid compliance pack:\n{exc}")


def _explain(decision: r.Decision, pack: r.Pack, at: datetime, zones: tuple[str, ...]) -> str:
    show = r.zone(zones[0])
    lines = [f"{pack.id} at {at.astimezone(show):%a %Y-%m-%d %H:%M %Z} ({', '.join(zones)})"]
    if pack.legal_review:
        lines.append("  note: this pack is a conservative default pending legal review")
    if decision.allowed:
        lines.append("ALLOWED: no rule forbids a call at this moment")
        return "\n".join(lines)
    lines.append(f"REFUSED by {decision.rule_id}: {decision.reason}")
    lines.append(f"  source: {decision.rule.split(': ', 1)[1] if decision.rule else '-'}")
    if decision.next_allowed_at is None:
        lines.append("next allowed: never within the horizon (or until a person lifts a flag)")
    else:
        nxt = decision.next_allowed_at
        lines.append(
            f"next allowed: {nxt.astimezone(show):%a %Y-%m-%d %H:%M %Z} ({nxt.isoformat()})"
        )
    return "\n".join(lines)


@compliance_app.command("check")
def check_cmd(
    at: Annotated[
        str | None,
        typer.Option(
            help="Moment to check (ISO 8601); local time in --tz unless it has an offset."
        ),
    ] = None,
    jurisdiction: Annotated[
        str | None, typer.Option(help="Pack id: US, CO, PE, MX, BR, CL, AR.")
    ] = None,
    tz: Annotated[
        list[str] | None,
        typer.Option(help="Debtor time zone (repeat for several: all must allow the call)."),
    ] = None,
    subdivision: Annotated[
        str | None, typer.Option(help="State or province code (MA, AL...).")
    ] = None,
    account: Annotated[
        int | None, typer.Option(help="Check a CRM account (zones, attempts, restrictions).")
    ] = None,
    phone_id: Annotated[int | None, typer.Option(help="The account's phone to dial.")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [default: the settings' database].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Is a call allowed at a moment? Without --account only hours and holidays are checked."""
    zones = tuple(tz or ())
    flags, ledger, person_ledger = r.Flags(), r.Ledger(), None
    if account is not None:
        sub = _account_subject(account, at, zones, phone_id, database_url)
        jurisdiction = jurisdiction or sub.jurisdiction
        if jurisdiction is None:
            _fail("the account's country is unknown: pass --jurisdiction")
        zones = zones or sub.zones
        subdivision = subdivision or sub.subdivision
        flags, ledger, person_ledger = sub.flags, sub.ledger, sub.person_ledger
        pack = _pack(jurisdiction)
    elif jurisdiction is None:
        _fail("pass --jurisdiction (calendar rules) or --account")
    else:
        pack = _pack(jurisdiction).calendar_only()
    zones = zones or (pack.default_timezone,)
    try:
        moment = parse_at(at, zones[0])
        decision = r.check(
            pack, moment, zones, subdivision, ledger, flags, person_ledger=person_ledger
        )
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(decision.as_json(r.zone(zones[0])), ensure_ascii=False))
    else:
        typer.echo(_explain(decision, pack, moment, zones))


def _account_subject(
    account: int, at: str | None, zones: tuple[str, ...], phone_id: int | None, url: str | None
) -> Subject:
    from voiceagent.config import get_settings
    from voiceagent.crm.db import make_engine, session_factory
    from voiceagent.dialer.ledger import subject

    engine = make_engine(url or get_settings().resolved_database_url())
    try:
        with session_factory(engine)() as s:
            try:
                # --at without an offset is local to the account's zone, known only after lookup
                first = subject(s, account, datetime.now(UTC), phone_id)
                zone_name = (zones or first.zones or ("UTC",))[0]
                return subject(s, account, parse_at(at, zone_name), phone_id)
            except LookupError as exc:
                _fail(str(exc.args[0]))
    finally:
        engine.dispose()


@compliance_app.command("packs")
def packs_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the packs and their rules, each with its citation."""
    try:
        packs = load_packs()
    except PackError as exc:
        _fail(f"invalid compliance pack:\n{exc}")
    if as_json:
        out = [
            {
                "id": p.id,
                "name": p.name,
                "country": p.country,
                "legal_review": p.legal_review,
                "required_prompts": list(p.prompt_keys),
                "rules": [{"id": x.id, "cite": str(x.cite)} for x in p.rules],
                "overrides": {
                    k: [{"id": x.id, "cite": str(x.cite)} for x in v]
                    for k, v in p.overrides.items()
                },
            }
            for p in packs.values()
        ]
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for p in packs.values():
        review = "  [legal review pending]" if p.legal_review else ""
        typer.echo(f"{p.id}  {p.name}  (default zone {p.default_timezone}){review}")
        typer.echo(f"  dialplan must set: {', '.join(p.prompt_keys) or '-'}")
        for x in p.rules:
            typer.echo(f"  {x.id:<26} {x.cite}")
        for key, extra in p.overrides.items():
            for x in extra:
                typer.echo(f"  {x.id:<26} {x.cite}  (only in {key})")
