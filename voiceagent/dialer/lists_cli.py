"""``voiceagent lists``: upload call lists (the work is done in ``dialer/importer.py``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from voiceagent.dialer.readers import FIELDS

lists_app = typer.Typer(help="Upload call lists (CSV or XLSX) into the CRM.", no_args_is_help=True)


@lists_app.callback()
def lists() -> None:
    """Upload call lists (CSV or XLSX) into the CRM."""


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextlib.contextmanager
def _progress(name: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (stdout keeps the report)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    columns = (BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    with Progress(
        *Progress.get_default_columns()[:1], *columns, console=Console(stderr=True)
    ) as bar:
        task = bar.add_task(f"importing {name}", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update
        bar.update(task, completed=bar.tasks[0].total or 0)


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.rpartition("=")
        if not sep or not column.strip() or not target.strip():
            _fail(f"--map expects COLUMN=FIELD, got {pair!r}")
        mapping[column.strip()] = target.strip().lower()
    return mapping


@lists_app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="The call list: CSV (any common dialect) or XLSX.")],
    campaign: Annotated[str, typer.Option(help="Campaign name (created as a draft if missing).")],
    region: Annotated[
        str | None,
        typer.Option(help="Country (ISO 3166, e.g. CO) of numbers written without +code."),
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help=f"COLUMN=FIELD for a column named otherwise; fields: {', '.join(FIELDS)}.",
        ),
    ] = None,
    creditor: Annotated[str, typer.Option(help="Creditor that owns the portfolios.")] = "default",
    portfolio: Annotated[
        str, typer.Option(help="Portfolio of rows without a portfolio column.")
    ] = "default",
    errors: Annotated[
        Path | None,
        typer.Option(help="Error report CSV [default: FILE's name + .errors.csv, beside it]."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL [default: the settings' database].")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {imported, duplicates, rejected} as JSON.")
    ] = False,
) -> None:
    """Import a call list: accounts (never duplicated), phones in E.164, the list's rows."""
    from voiceagent.config import get_settings
    from voiceagent.crm.db import make_engine, upgrade
    from voiceagent.dialer.importer import import_list
    from voiceagent.dialer.readers import ListFormatError

    mapping = _mapping(map_ or [])
    if region is not None and (len(region) != 2 or not region.isalpha()):
        _fail(f"--region expects a two-letter country code such as CO, got {region!r}")
    url = database_url or get_settings().resolved_database_url()
    engine = make_engine(url)
    try:
        upgrade(engine)
        with contextlib.ExitStack() as stack:
            progress = None if as_json else stack.enter_context(_progress(file.name))
            result = import_list(
                engine,
                file,
                campaign,
                region=region,
                mapping=mapping,
                creditor=creditor,
                portfolio=portfolio,
                error_file=errors,
                progress=progress,
            )
    except ListFormatError as exc:
        _fail(str(exc))
    except OSError as exc:  # a full disk...
        _fail(
            f"{exc.filename or file}: {exc.strerror or exc} "
            "(the list is marked failed; upload the file again to complete it)"
        )
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(result.summary(), ensure_ascii=False))
        return
    typer.echo(
        f"{file.name}: {result.imported} imported, {result.duplicates} duplicates, "
        f"{len(result.rejected)} rejected -> campaign {campaign!r} "
        f"(call list {result.call_list_id})"
    )
    for rejection in result.rejected[:20]:
        typer.echo(f"  line {rejection.line}: {rejection.reason}")
    if len(result.rejected) > 20:
        typer.echo(f"  ... and {len(result.rejected) - 20} more")
    if result.error_file is not None:
        typer.echo(f"rejected rows: {result.error_file}")
