"""The ``voiceagent`` command line: parse arguments, wire objects, print; nothing else."""

from __future__ import annotations

import json
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer

from voiceagent import __version__
from voiceagent.api.users_cli import users_app
from voiceagent.db_cli import db_app, prepare_database
from voiceagent.dialer.campaigns_cli import campaigns_app
from voiceagent.dialer.compliance_cli import compliance_app
from voiceagent.dialer.lists_cli import lists_app
from voiceagent.models_cli import models_app
from voiceagent.report_cli import report_app
from voiceagent.slips.cli import slips_app

app = typer.Typer(
    help="voiceagent: a virtual agent for debt-collection calls.",
    no_args_is_help=True,
    add_completion=False,
)
dialplan_app = typer.Typer(help="Validate and inspect dialplans.", no_args_is_help=True)
app.add_typer(dialplan_app, name="dialplan")
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(compliance_app, name="compliance")
app.add_typer(users_app, name="users")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(lists_app, name="lists")
app.add_typer(report_app, name="report")
app.add_typer(slips_app, name="slips")


def _today(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the version."""
    print(__version__)


@app.command()
def understand(
    lang: Annotated[str, typer.Option(help="Locale: es-419, pt-BR or en-US.")],
    text: Annotated[
        str | None, typer.Option(help="One utterance; without it, one per stdin line.")
    ] = None,
    today: Annotated[
        str | None, typer.Option(help="Resolve relative dates against YYYY-MM-DD.")
    ] = None,
    owed: Annotated[
        float | None, typer.Option(help="Amount owed (for 'la mitad', 'todo').")
    ] = None,
) -> None:
    """Print the intent and slots of an utterance as JSON (one object per line in batch mode)."""
    from voiceagent.nlu import understander_for

    try:
        nlu = understander_for(lang)
    except ValueError as exc:
        _fail(str(exc))
    day = _today(today)
    owed_amount = Decimal(str(owed)) if owed is not None else None
    lines = [text] if text is not None else (line.rstrip("\n") for line in sys.stdin)
    for line in lines:
        if text is None and not line.strip():
            continue
        result = nlu.understand(line, day, owed_amount)
        print(json.dumps(result.to_json(), ensure_ascii=False))


@dialplan_app.command("check")
def dialplan_check(
    paths: Annotated[list[Path], typer.Argument(help="Dialplan YAML files.")],
    vosk_model: Annotated[
        Path | None, typer.Option(help="Also check each state's grammar against this Vosk model.")
    ] = None,
) -> None:
    """Validate dialplans; print every problem with file, line and field."""
    from voiceagent.dialog.loader import DialplanError, load_dialplan

    missing = None
    if vosk_model is not None:
        from voiceagent.asr.vosk import VoskRecognizer

        try:
            missing = VoskRecognizer(vosk_model).missing_words
        except (OSError, ValueError, RuntimeError) as exc:
            _fail(f"{vosk_model}: {exc}", 1)
    failed = False
    for path in paths:
        try:
            plan = load_dialplan(path)
        except DialplanError as exc:
            failed = True
            for problem in exc.problems:
                typer.echo(str(problem), err=True)
            continue
        print(
            f"{path}: ok ({plan.dialplan.id} v{plan.dialplan.version}, {len(plan.states)} states)"
        )
        if missing is not None:
            from voiceagent.call.grammar import grammar_report

            for state, words in grammar_report(plan, missing).items():
                shown = ", ".join(words[:12]) + (" ..." if len(words) > 12 else "")
                typer.echo(f"{path}: states.{state}: {len(words)} words not in the model: {shown}")
    if failed:
        raise typer.Exit(1)


@dialplan_app.command("show")
def dialplan_show(
    path: Path,
    format: Annotated[str, typer.Option("--format", help="table or mermaid")] = "table",
) -> None:
    """Print a dialplan's states and transitions as a table or a Mermaid diagram."""
    from voiceagent.dialog.diagram import mermaid, table
    from voiceagent.dialog.loader import DialplanError, load_dialplan

    try:
        plan = load_dialplan(path)
    except DialplanError as exc:
        _fail(str(exc), 1)
    if format not in ("table", "mermaid"):
        _fail("--format must be table or mermaid")
    print(mermaid(plan) if format == "mermaid" else table(plan))


@dialplan_app.command("schema")
def dialplan_schema() -> None:
    """Print the dialplan JSON Schema."""
    from voiceagent.dialog.loader import schema_json

    sys.stdout.write(schema_json())


def _load_account(path: Path) -> Any:
    from pydantic import ValidationError

    from voiceagent.dialog.account import Account

    try:
        return Account.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"{path}: {exc}")
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(f"{path}: invalid account: {details}")


@app.command()
def chat(
    account: Annotated[Path, typer.Option(help="ACCOUNT.json with the debtor's data.")],
    dialplan: Annotated[
        Path | None, typer.Option(help="Dialplan YAML; default: chosen by dialplans/routing.yaml.")
    ] = None,
    script: Annotated[
        Path | None, typer.Option(help="One debtor turn per line; <silence> is no input.")
    ] = None,
    today: Annotated[str | None, typer.Option(help="The call's date, YYYY-MM-DD.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print transcript and outcome as JSON.")
    ] = False,
) -> None:
    """Talk to the agent as the debtor would, in text (interactive, or from a script)."""
    from voiceagent.dialog.chat import run_chat
    from voiceagent.dialog.loader import DialplanError
    from voiceagent.dialog.prompts import MissingAccountField
    from voiceagent.dialog.routing import RoutingError

    acct = _load_account(account)
    try:
        result = run_chat(
            acct, dialplan, script, _today(today), interactive=not as_json and script is None
        )
    except (DialplanError, MissingAccountField, RoutingError, OSError) as exc:
        _fail(str(exc), 1)
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    elif script is not None:
        for turn in result["transcript"]:
            print(f"{turn['speaker']:>6}: {turn['text']}")
        print(f"outcome: {json.dumps(result['outcome'], ensure_ascii=False)}")


@app.command()
def simulate(
    account: Annotated[Path, typer.Option(help="ACCOUNT.json with the debtor's data.")],
    script: Annotated[Path, typer.Option(help="Debtor turns, one per line (as for chat).")],
    out: Annotated[
        Path, typer.Option(help="Directory for recording.wav, transcript.json, crm.jsonl.")
    ],
    dialplan: Annotated[
        Path | None, typer.Option(help="Dialplan YAML; default: routing.yaml.")
    ] = None,
    today: Annotated[str | None, typer.Option(help="The call's date, YYYY-MM-DD.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print outcome and latency as JSON.")
    ] = False,
    realtime: Annotated[bool, typer.Option(help="Run at wall-clock speed.")] = False,
    asr: Annotated[str, typer.Option(help="Recognizer: whisper or vosk.")] = "whisper",
    echo_db: Annotated[
        float | None, typer.Option(help="Echo the agent back at this attenuation (dB).")
    ] = None,
) -> None:
    """Run a whole call through the speech pipeline against a scripted, speaking debtor."""
    import asyncio

    from voiceagent.call.simulate import latency_summary, load_engines, simulate_call
    from voiceagent.config import get_settings
    from voiceagent.dialog.chat import pick_plan
    from voiceagent.dialog.loader import DialplanError

    if asr not in ("whisper", "vosk"):
        _fail("--asr must be whisper or vosk")
    acct = _load_account(account)
    try:
        plan = pick_plan(acct, dialplan)
    except DialplanError as exc:
        _fail(str(exc), 1)
    settings = get_settings()
    try:
        lines = script.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        _fail(f"{script}: {exc.strerror}", 1)
    try:
        engines = load_engines(
            plan.dialplan.locale, asr, settings.models_path, settings.data_dir / "prompt-cache"
        )
    except (OSError, RuntimeError, ImportError) as exc:
        _fail(f"cannot start the speech engines: {exc}", 1)
    echo_gain = 10 ** (-echo_db / 20) if echo_db is not None else 0.0
    try:
        result, _ = asyncio.run(
            simulate_call(plan, acct, lines, _today(today), out, engines, realtime, echo_gain)
        )
    except FileNotFoundError as exc:
        _fail(f"{exc.filename or exc}: not found (the debtor's voice needs espeak-ng)", 1)
    finally:
        engines.pools.shutdown()
    latency = latency_summary(result)
    if as_json:
        transcript = [{"speaker": t["speaker"], "text": t["text"]} for t in result.transcript]
        payload = {"transcript": transcript, "outcome": result.outcome, "latency_ms": latency}
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    for t in result.transcript:
        print(f"{t['start_ms'] / 1000:7.2f}s {t['speaker']:>6}: {t['text']}")
    print(f"outcome: {json.dumps(result.outcome, ensure_ascii=False)}")
    print("turn  end-of-speech->first-audio  asr  tts-first")
    for i, turn in enumerate(result.turns, start=1):
        print(f"{i:>4}  {turn.latency_ms!s:>10} ms  {turn.asr_ms:7.0f}  {turn.tts_first_ms:7.0f}")
    print(
        f"latency p50 {latency['p50']} ms, p95 {latency['p95']} ms; recording: {out}/recording.wav"
    )


@app.command()
def transcribe(
    recording: Annotated[Path, typer.Argument(help="Stereo call recording (debtor left).")],
    lang: Annotated[str, typer.Option(help="Locale: es-419, pt-BR or en-US.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the lines as JSON.")] = False,
) -> None:
    """Post-call transcript of both channels with Whisper (accurate, off the call's path)."""
    from voiceagent.asr.whisper import WhisperRecognizer, ensure_whisper_base
    from voiceagent.call.postcall import transcribe_recording
    from voiceagent.config import get_settings
    from voiceagent.nlu.lexicon import language_of

    try:
        language = language_of(lang)
        model = ensure_whisper_base(get_settings().models_path)
        lines = transcribe_recording(recording, WhisperRecognizer(model, language=language))
    except (ValueError, OSError) as exc:
        _fail(str(exc), 1)
    if as_json:
        print(json.dumps(lines, ensure_ascii=False, indent=2))
        return
    for line in lines:
        start = line["start_ms"] / 1000
        print(f"{int(start // 60):02d}:{start % 60:05.2f} {line['speaker']:>6}: {line['text']}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default from settings).")] = None,
) -> None:
    """Run the worker: HTTP API and dashboard, plus SIP / AudioSocket calls when configured."""
    import asyncio
    import logging

    from voiceagent.api.app import create_app
    from voiceagent.config import get_settings
    from voiceagent.worker.serve import serve as run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("alembic", "faster_whisper"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = get_settings()
    updates: dict[str, Any] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    settings = settings.model_copy(update=updates)
    closed = prepare_database(settings.resolved_database_url())
    if closed:
        typer.echo(f"{closed} call(s) left open by a previous run closed as interrupted", err=True)
    asyncio.run(run_worker(settings, create_app(settings)))


@app.command()
def dial(
    number: Annotated[str, typer.Argument(help="Number or SIP user to call (via the registrar).")],
    account_id: Annotated[int, typer.Option("--account-id", help="CRM account the call is about.")],
    ring_timeout: Annotated[float, typer.Option(help="Seconds to let it ring.")] = 30.0,
) -> None:
    """Place one outbound SIP call for an account and run the conversation (no campaign)."""
    import asyncio

    from voiceagent.config import get_settings
    from voiceagent.telephony.sipconfig import DialResult
    from voiceagent.worker.dialout import dial_once

    settings = get_settings()
    prepare_database(settings.resolved_database_url())
    try:
        done = asyncio.run(dial_once(settings, number, account_id, ring_timeout))
    except ValueError as exc:
        _fail(str(exc))
        return
    if isinstance(done, DialResult):
        typer.echo(json.dumps({"result": done.value}))
        raise typer.Exit(1)
    typer.echo(json.dumps({"result": done.outcome, "call_id": done.call_id}))


def main() -> None:
    """Console-script entry point."""
    app()
