"""``voiceagent db``: create or upgrade the CRM database schema and show its revision."""

from __future__ import annotations

from typing import Annotated

import typer

db_app = typer.Typer(help="The CRM database: migrations and status.", no_args_is_help=True)

UrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: VOICEAGENT_DATABASE_URL)."),
]


def database_url(url: str | None) -> str:
    """The given URL, or the one from settings (a SQLite file in the data dir by default)."""
    if url:
        return url
    from voiceagent.config import get_settings

    return get_settings().resolved_database_url()


def prepare_database(url: str) -> int:
    """Upgrade to the newest schema and close calls a crashed worker left open.

    Returns how many calls were marked interrupted. Run once when a worker starts, before it
    takes calls (single worker per database: every open call belonged to a dead process).
    """
    from voiceagent.crm.db import make_engine, session_factory, upgrade
    from voiceagent.crm.sink import mark_interrupted_calls

    engine = make_engine(url)
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions.begin() as session:
            return len(mark_interrupted_calls(session))
    finally:
        engine.dispose()


@db_app.command("upgrade")
def upgrade_command(database_url_: UrlOption = None) -> None:
    """Create the schema or migrate it to the newest revision (safe to run again)."""
    url = database_url(database_url_)
    closed = prepare_database(url)
    typer.echo(f"database at head revision; {closed} interrupted call(s) closed")


@db_app.command("current")
def current_command(database_url_: UrlOption = None) -> None:
    """Print the database's schema revision and the newest one this version knows."""
    from voiceagent.crm.db import current_revision, head_revision, make_engine

    engine = make_engine(database_url(database_url_))
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    typer.echo(f"current: {current or '(empty database)'}\nhead:    {head}")
    if current != head:
        raise typer.Exit(1)
