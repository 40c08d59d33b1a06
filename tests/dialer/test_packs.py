"""Pack files: every shipped pack loads with citations; a broken pack names file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from voiceagent.dialer.packs import (
    PACKS_DIR,
    PackError,
    dialplan_issues,
    get_pack,
    load_pack,
    load_pack_text,
    load_packs,
)
from voiceagent.dialog.loader import load_dialplan

ROOT = Path(__file__).resolve().parents[2]
CO_TEXT = (PACKS_DIR / "co.yaml").read_text(encoding="utf-8")
US_TEXT = (PACKS_DIR / "us.yaml").read_text(encoding="utf-8")


def test_every_jurisdiction_ships_a_pack() -> None:
    assert set(load_packs()) == {"US", "CO", "PE", "MX", "BR", "CL", "AR", "ZZ"}


@pytest.mark.parametrize("jurisdiction", ["US", "CO", "PE", "MX", "BR", "CL", "AR"])
def test_every_rule_cites_its_source(jurisdiction: str) -> None:
    pack = get_pack(jurisdiction)
    rules = list(pack.rules) + [r for extra in pack.overrides.values() for r in extra]
    kinds = {type(r).__name__ for r in rules}
    assert {"Hours", "Restriction"} <= kinds
    for rule in rules:
        assert rule.id.split(".")[0].split("-")[0] == jurisdiction.lower()
        assert len(rule.cite.law) > 3 and len(rule.cite.source) > 3
    for req in pack.required_prompts:
        assert req.cite.law
    assert {"bot_disclosure", "recording_notice"} <= set(pack.prompt_keys)


def test_us_pack_requires_the_mini_miranda_and_has_a_massachusetts_override() -> None:
    us = get_pack("US")
    assert "collector_disclosure" in us.prompt_keys
    assert [r.id for r in us.overrides["MA"]] == ["us-ma.two_in_seven"]
    assert len(us.rules_for("ma")) == len(us.rules) + 1
    assert us.rules_for(None) == us.rules


def test_calendar_only_keeps_hours_and_holidays() -> None:
    kinds = {type(r).__name__ for r in get_pack("CO").calendar_only().rules}
    assert kinds == {"Hours", "Holidays"}


def test_unknown_jurisdiction_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: AR, BR, CL, CO, MX, PE, US, ZZ"):
        get_pack("XY")


def _line(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def _error(text: str) -> str:
    with pytest.raises(PackError) as info:
        load_pack_text(text, "co.yaml")
    return str(info.value)


def test_bad_time_is_named_with_file_line_and_field() -> None:
    text = CO_TEXT.replace('mon: ["07:00-19:00"]', 'mon: ["07:00-25:00"]')
    line = _line(text, "07:00-25:00")
    assert _error(text) == (
        f"co.yaml:{line}: rules.3.hours.mon.0: "
        "bad time span '07:00-25:00' (expected HH:MM-HH:MM, 00:00 to 24:00)"
    )


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "message"),
    [
        (
            'sat: ["08:00-15:00"]',
            'sun: ["19:00-08:00"]',
            "sun:",
            "rules.3.hours.sun.0",
            "ends before it starts",
        ),
        ("      sat: [", "      sab: [", "sab:", "rules.3.hours.sab", "unknown weekday 'sab'"),
        ("country: CO", "country: XX", "country:", "country", "unknown country 'XX'"),
        (
            "default_timezone: America/Bogota",
            "default_timezone: America/Bogata",
            "default_timezone",
            "default_timezone",
            "unknown time zone 'America/Bogata'",
        ),
        (
            "    kind: holidays\n",
            "    kind: holidays\n    colour: red\n",
            "colour",
            "rules.2.colour",
            "unknown field 'colour'",
        ),
        ("kind: cap", "kind: capp", "kind: capp", "rules.4.kind", "unknown rule kind 'capp'"),
        ("max: 1", "max: 0", "max: 0", "rules.4.max", "greater than or equal to 1"),
        ("flags: [cease,", "flags: [ceese,", "flags:", "rules.0.flags.0", "'cease'"),
        (
            "- prompt: bot_disclosure",
            "- prompt: bot_disclosur",
            "prompt: bot_disclosur",
            "required_prompts.0.prompt",
            "'collector_disclosure'",
        ),
        (
            "id: co.once_a_day",
            "id: co.hours",
            "id: co.hours\n    kind: cap",
            "rules.4.id",
            "duplicate rule id 'co.hours'",
        ),
        (
            "id: co.once_a_day",
            "id: pe.once_a_day",
            "id: pe.once",
            "rules.4.id",
            "must start with 'co'",
        ),
    ],
)
def test_mutated_pack_errors_name_file_line_field(
    old: str, new: str, needle: str, field: str, message: str
) -> None:
    assert old in CO_TEXT
    text = CO_TEXT.replace(old, new, 1)
    error = _error(text)
    assert f"co.yaml:{_line(text, needle)}: {field}: " in error
    assert message in error


def test_missing_citation_names_the_rule() -> None:
    start = CO_TEXT.index("  - id: co.holidays")
    cite = CO_TEXT.index("    cite:", start)
    end = CO_TEXT.index("  - id:", cite)
    text = CO_TEXT[:cite] + CO_TEXT[end:]
    assert _error(text) == (
        f"co.yaml:{_line(text, '- id: co.holidays')}: rules.2.cite: "
        "missing citation (cite: law, article, source)"
    )


def test_unknown_subdivision_in_overrides() -> None:
    text = US_TEXT.replace("  MA:\n", "  QQ:\n")
    with pytest.raises(PackError) as info:
        load_pack_text(text, "us.yaml")
    assert f"us.yaml:{_line(text, 'QQ:')}: overrides.QQ: unknown subdivision 'QQ' of US" in str(
        info.value
    )


def test_yaml_syntax_error_and_non_mapping() -> None:
    with pytest.raises(PackError, match=r"co.yaml:3: .*YAML error"):
        load_pack_text("id: CO\nrules: [\n", "co.yaml")
    with pytest.raises(PackError, match="a pack is a mapping"):
        load_pack_text("- a\n- b\n", "co.yaml")


def test_load_pack_from_a_path_reports_that_path(tmp_path: Path) -> None:
    bad = tmp_path / "xx.yaml"
    bad.write_text(CO_TEXT.replace("country: CO", "country: XX"), encoding="utf-8")
    with pytest.raises(PackError, match=rf"{bad}:\d+: country"):
        load_pack(bad)
    with pytest.raises(PackError, match="cannot read"):
        load_pack(tmp_path / "missing.yaml")


def test_strictest_table_that_allows_nothing_is_refused() -> None:
    lines = (PACKS_DIR / "br.yaml").read_text(encoding="utf-8").split("\n")
    al = lines.index("      AL:")
    assert lines[al + 6] == '        sat: ["08:00-14:00"]'
    lines[al + 1 : al + 7] = ['        mon: ["06:00-07:00"]']  # Alagoas: only Monday at dawn
    with pytest.raises(PackError, match="strictest table allows no hours"):
        load_pack_text("\n".join(lines), "br.yaml")


def test_dialplan_hook_reports_missing_required_prompts() -> None:
    english = load_dialplan(ROOT / "dialplans" / "en-US" / "early.yaml")
    spanish = load_dialplan(ROOT / "dialplans" / "es-419" / "early.yaml")
    assert dialplan_issues(get_pack("US"), english) == []
    assert dialplan_issues(get_pack("CO"), spanish) == []
    issues = dialplan_issues(get_pack("US"), spanish)
    assert [path for path, _ in issues] == [("compliance", "collector_disclosure")]
    assert "required by compliance pack US: FDCPA 15 USC 1692e(11)" in issues[0][1]
