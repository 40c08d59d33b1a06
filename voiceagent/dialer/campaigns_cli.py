"""``voiceagent campaigns``: start, pause, resume, stop a campaign and show its progress."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

campaigns_app = typer.Typer(
    help="Campaigns: start, pause, resume, stop, status.", no_args_is_help=True
)

UrlOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL [default: the settings' database].")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _run(url: str | None, fn: Callable[[Any], Any]) -> Any:
    from voiceagent.config import get_settings
    from voiceagent.crm.db import make_engine, session_factory, upgrade

    engine = make_engine(url or get_settings().resolved_database_url())
    try:
        upgrade(engine)
        with session_factory(engine).begin() as s:
            return fn(s)
    except (LookupError, ValueError) as exc:
        # A KeyError's str() is the repr of its key: print the message itself.
        _fail(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
    finally:
        engine.dispose()


def _change(name: str, action: str, url: str | None, as_json: bool) -> None:
    from sqlalchemy.orm import sessionmaker

    from voiceagent.dialer import campaigns as cmp

    def apply(s: Any) -> dict[str, Any]:
        if action == "start":  # a batch of list lines per transaction: calls never wait long
            cmp.start_in_batches(sessionmaker(bind=s.get_bind()), name)
        else:
            getattr(cmp, action)(s, name)
        return cmp.progress(s, name).as_json()

    out = _run(url, apply)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
    else:
        typer.echo(f"campaign {name!r}: {out['status']}")


@campaigns_app.command()
def start(name: str, database_url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Queue the call list's accounts and let the dialer reserve from them."""
    _change(name, "start", database_url, as_json)


@campaigns_app.command()
def pause(name: str, database_url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Stop new reservations; calls in progress finish."""
    _change(name, "pause", database_url, as_json)


@campaigns_app.command()
def resume(name: str, database_url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Reserve again after a pause."""
    _change(name, "resume", database_url, as_json)


@campaigns_app.command()
def stop(name: str, database_url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Finish the campaign for good; calls in progress finish."""
    _change(name, "stop", database_url, as_json)


@campaigns_app.command()
def status(name: str, database_url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Accounts pending / in progress / done by result, attempts by result."""
    from voiceagent.dialer import campaigns as cmp

    out = _run(database_url, lambda s: cmp.progress(s, name).as_json())
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    acc = out["accounts"]
    typer.echo(f"campaign {out['campaign']!r}: {out['status']}")
    typer.echo(
        f"accounts: {acc['pending']} pending, {acc['in_progress']} in progress, {acc['done']} done"
    )
    for result, count in acc["done_by_result"].items():
        typer.echo(f"  done {result}: {count}")
    typer.echo(f"attempts: {out['attempts']}  abandon rate (30 d): {out['abandon_rate_30d']:.2%}")
