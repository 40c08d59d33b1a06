"""The command-line interfaces other work depends on, run as real subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DIALPLANS, FIXTURES
from tests.model_gate import need

ACCOUNT = FIXTURES / "accounts" / "co-early.json"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voiceagent", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_understand_prints_one_json_object() -> None:
    proc = run(
        "understand",
        "--lang",
        "es-419",
        "--today",
        "2026-11-18",
        "--owed",
        "1500",
        "--text",
        "dale, le pago la mitad el próximo viernes",
    )
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["intent"] == "promise_to_pay"
    assert obj["slots"] == {"date": "2026-11-20", "amount": 750, "time": None}
    assert obj["explain"]["rule"]


def test_understand_batch_mode_one_line_per_utterance() -> None:
    lines = "ya pagué\nno me vuelvan a llamar\n\nllámeme mañana a las tres de la tarde\n"
    proc = run("understand", "--lang", "es-419", "--today", "2026-11-18", stdin=lines)
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["intent"] for o in objs] == ["already_paid", "stop_contact", "callback_request"]
    assert objs[2]["slots"]["time"] == "15:00"


def test_understand_rejects_unknown_language() -> None:
    proc = run("understand", "--lang", "fr-FR", "--text", "oui")
    assert proc.returncode == 2
    assert "unsupported language" in proc.stderr


def test_chat_script_json(tmp_path: Path) -> None:
    script = tmp_path / "turns.txt"
    script.write_text("sí, con ella\n4821\nsí\n<silence>\nel lunes\nsí\nno\n", encoding="utf-8")
    proc = run(
        "chat",
        "--dialplan",
        str(DIALPLANS / "es-419" / "early.yaml"),
        "--account",
        str(ACCOUNT),
        "--script",
        str(script),
        "--today",
        "2026-11-18",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["outcome"] == {
        "result": "promise",
        "promise": {"date": "2026-11-23", "amount": 1200000, "currency": "COP", "plan": "full"},
        "callback_at": None,
    }
    speakers = {t["speaker"] for t in out["transcript"]}
    assert speakers == {"agent", "debtor"}
    assert {"speaker": "debtor", "text": "<silence>"} in out["transcript"]


def test_chat_routes_by_account_when_no_dialplan_given(tmp_path: Path) -> None:
    script = tmp_path / "turns.txt"
    script.write_text("no me vuelvan a llamar\n", encoding="utf-8")
    proc = run(
        "chat",
        "--account",
        str(FIXTURES / "accounts" / "co-late.json"),
        "--script",
        str(script),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outcome"]["result"] == "stop_contact"


def test_chat_interactive_reads_stdin() -> None:
    proc = run(
        "chat",
        "--dialplan",
        str(DIALPLANS / "es-419" / "early.yaml"),
        "--account",
        str(ACCOUNT),
        "--today",
        "2026-11-18",
        stdin="no, número equivocado\n",
    )
    assert proc.returncode == 0, proc.stderr
    assert "¿Hablo con María Fernanda López?" in proc.stdout
    assert "[CRM] wrong_number" in proc.stdout


def test_chat_rejects_a_bad_account(tmp_path: Path) -> None:
    bad = tmp_path / "acct.json"
    bad.write_text(json.dumps({"name": "X", "document_last4": "12"}), encoding="utf-8")
    proc = run(
        "chat", "--dialplan", str(DIALPLANS / "es-419" / "early.yaml"), "--account", str(bad)
    )
    assert proc.returncode == 2
    assert "document_last4" in proc.stderr and "amount_owed" in proc.stderr


def test_dialplan_check_ok_and_failure(tmp_path: Path) -> None:
    good = run("dialplan", "check", *map(str, sorted(DIALPLANS.glob("*/*.yaml"))))
    assert good.returncode == 0, good.stderr
    assert good.stdout.count(": ok") >= 4
    broken = tmp_path / "broken.yaml"
    text = (DIALPLANS / "es-419" / "early.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("deny: not_the_person}", "deny: nobody}"), encoding="utf-8")
    bad = run("dialplan", "check", str(broken))
    assert bad.returncode == 1
    assert (
        f"{broken}:" in bad.stderr
        and "states.greeting.on.deny: unknown state 'nobody'" in bad.stderr
    )


def test_dialplan_show_table_and_mermaid() -> None:
    path = str(DIALPLANS / "es-419" / "early.yaml")
    table = run("dialplan", "show", path)
    assert table.returncode == 0, table.stderr
    assert "greeting" in table.stdout and "affirm -> verify_document" in table.stdout
    mermaid = run("dialplan", "show", path, "--format", "mermaid")
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.startswith("stateDiagram-v2")
    assert "greeting --> verify_document: affirm" in mermaid.stdout


@pytest.mark.models
@pytest.mark.slow
def test_simulate_json_from_the_readme(tmp_path: Path) -> None:
    need(shutil.which("espeak-ng") is not None, "espeak-ng")
    env = {**os.environ, "VOICEAGENT_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "voiceagent",
            "simulate",
            "--account",
            str(FIXTURES / "accounts" / "us-early.json"),
            "--script",
            str(FIXTURES / "scripts" / "en-promise.txt"),
            "--today",
            "2026-12-08",
            "--out",
            str(tmp_path / "call"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["outcome"]["result"] == "promise"
    assert out["outcome"]["promise"]["date"] == "2026-12-15"
    assert (
        out["latency_ms"]["p50"] is not None
        and out["latency_ms"]["p95"] >= out["latency_ms"]["p50"]
    )
    assert {t["speaker"] for t in out["transcript"]} == {"agent", "debtor"}
    assert (tmp_path / "call" / "recording.wav").stat().st_size > 100_000


def test_db_upgrade_creates_the_schema_and_current_reports_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    before = run("db", "current", "--database-url", url)
    assert before.returncode == 1 and "(empty database)" in before.stdout
    up = run("db", "upgrade", "--database-url", url)
    assert up.returncode == 0, up.stderr
    assert "head revision" in up.stdout
    after = run("db", "current", "--database-url", url)
    assert after.returncode == 0, after.stdout
    lines = dict(line.split(":", 1) for line in after.stdout.splitlines())
    assert lines["current"].strip() == lines["head"].strip() != "(empty database)"
    assert run("db", "upgrade", "--database-url", url).returncode == 0  # idempotent


def test_users_add_prints_a_token_that_the_api_accepts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    assert run("db", "upgrade", "--database-url", url).returncode == 0
    added = run("users", "add", "ana", "--role", "supervisor", "--database-url", url)
    assert added.returncode == 0, added.stderr
    token = next(word for word in added.stdout.split() if word.startswith("va1."))
    dup = run("users", "add", "ana", "--role", "admin", "--database-url", url)
    assert dup.returncode != 0 and "ana" in dup.stderr + dup.stdout
    listed = run("users", "list", "--database-url", url)
    assert "ana" in listed.stdout and "supervisor" in listed.stdout
    assert token not in listed.stdout  # a token is shown once, never listed

    from fastapi.testclient import TestClient

    from voiceagent.api.app import create_app
    from voiceagent.config import Settings

    with TestClient(create_app(Settings(database_url=url, data_dir=tmp_path))) as client:
        ok = client.get("/api/calls", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text
        bad = client.get("/api/calls", headers={"Authorization": f"Bearer {token}x"})
        assert bad.status_code == 401


def test_report_prints_the_pinned_metrics_as_csv(tmp_path: Path) -> None:
    import csv
    import io

    from tests.api.seed import seed
    from voiceagent.crm.db import make_engine, session_factory, upgrade
    from voiceagent.crm.models import Campaign

    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with session_factory(engine).begin() as s:
        ids = seed(s)
        name = s.get(Campaign, ids["c1"]).name  # type: ignore[union-attr]
    engine.dispose()
    args = ("report", "--campaign", name, "--from", "2026-03-02", "--by", "campaign")
    out = run(*args, "--format", "csv", "--database-url", url)
    assert out.returncode == 0, out.stderr
    (row,) = list(csv.DictReader(io.StringIO(out.stdout)))
    # The same hand-computed figures as tests/api/test_metrics.py.
    assert (row["attempts"], row["connected"], row["tma_s"], row["tmo_s"]) == (
        "10", "6", "106", "82.1",
    )  # fmt: skip
    assert row["cpc"] == "0.6667"
    table = run(*args, "--database-url", url)
    assert table.returncode == 0 and "106" in table.stdout
    missing = run("report", "--campaign", "nope", "--database-url", url)
    assert missing.returncode == 1 and "no campaign 'nope'" in missing.stderr
