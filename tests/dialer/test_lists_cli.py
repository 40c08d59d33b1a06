"""``voiceagent lists upload`` through the real command line (typer's runner on the sub-app)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.conftest import FIXTURES
from voiceagent.crm.db import make_engine
from voiceagent.crm.models import Account
from voiceagent.dialer.lists_cli import lists_app

LISTS = FIXTURES / "lists"


def upload(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(lists_app, ["upload", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_report_has_exactly_the_documented_shape(migrated_url: str, tmp_path: Path) -> None:
    path = Path(shutil.copy(LISTS / "co_latin1_semicolon.csv", tmp_path / "list.csv"))
    args = (str(path), "--campaign", "Marzo", "--region", "CO", "--database-url", migrated_url)
    code, out, _ = upload(*args, "--json")
    assert code == 0
    report = json.loads(out)
    assert list(report) == ["imported", "duplicates", "rejected"]
    assert (report["imported"], report["duplicates"]) == (3, 0)
    assert [r["line"] for r in report["rejected"]] == [5, 6, 7, 8, 9]
    assert all(list(r) == ["line", "reason"] and r["reason"] for r in report["rejected"])
    assert (tmp_path / "list.errors.csv").exists()

    code, out, _ = upload(*args, "--json")
    again = json.loads(out)
    assert (code, again["imported"], again["duplicates"]) == (0, 0, 3)
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Account)) == 3
    finally:
        engine.dispose()


def test_human_report_and_mapping_option(migrated_url: str, tmp_path: Path) -> None:
    path = Path(shutil.copy(LISTS / "co_spanish_headers.csv", tmp_path / "l.csv"))
    code, out, _ = upload(
        str(path),
        "--campaign",
        "Mapeo",
        "--region",
        "CO",
        "--map",
        "Nombre=name",
        "--map",
        "telefono=phone",
        "--database-url",
        migrated_url,
    )
    assert code == 0, out
    assert "2 imported, 0 duplicates, 0 rejected" in out
    assert "campaign 'Mapeo'" in out


def test_missing_required_column_fails_with_the_columns_found(
    migrated_url: str, tmp_path: Path
) -> None:
    path = Path(shutil.copy(LISTS / "co_spanish_headers.csv", tmp_path / "l.csv"))
    code, out, err = upload(str(path), "--campaign", "x", "--database-url", migrated_url)
    assert code == 1
    assert out == ""
    assert "missing required column 'name' and 'phone'" in err
    assert "'Telefono'" in err


def test_unknown_format_and_unreadable_file_fail(migrated_url: str, tmp_path: Path) -> None:
    legacy = tmp_path / "old.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0 legacy excel")
    code, _, err = upload(str(legacy), "--campaign", "x", "--database-url", migrated_url)
    assert code == 1 and "unknown format .xls" in err
    code, _, err = upload(
        str(tmp_path / "nope.csv"), "--campaign", "x", "--database-url", migrated_url
    )
    assert code == 1 and "cannot read" in err
    code, _, err = upload(str(legacy), "--campaign", "x", "--map", "nocolon")
    assert code == 1 and "--map expects COLUMN=FIELD" in err


def test_unwritable_error_report_fails_and_imports_nothing(
    migrated_url: str, tmp_path: Path
) -> None:
    path = Path(shutil.copy(LISTS / "co_latin1_semicolon.csv", tmp_path / "list.csv"))
    report = tmp_path / "missing-dir" / "errors.csv"
    code, _, err = upload(
        str(path),
        "--campaign",
        "x",
        "--region",
        "CO",
        "--errors",
        str(report),
        "--database-url",
        migrated_url,
    )
    assert code == 1 and "nothing was imported" in err
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Account)) == 0
    finally:
        engine.dispose()
