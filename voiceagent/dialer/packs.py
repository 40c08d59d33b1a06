"""Load compliance rule packs (``voiceagent/dialer/packs/*.yaml``) and validate them at load.

A pack is data: hours per weekday, holidays, contact caps, restriction flags, authorized
channels and the disclosures a dialplan must contain, each rule citing its source. Every error
names the file, the line and the field (``co.yaml:14: rules.0.hours.mon.0: bad time '25:00'``),
so a bad pack is refused when loaded, never in the middle of a dialling run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import holidays
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from voiceagent.dialer import rulekinds as kinds
from voiceagent.dialer import rules as r
from voiceagent.dialog.loader import DialplanError, Problem, line_of, parse_yaml
from voiceagent.dialog.model import Compliance, Dialplan

PACKS_DIR = Path(__file__).resolve().parent / "packs"
"""The packs shipped with the package, one file per jurisdiction."""
PROMPT_KEYS = tuple(Compliance.model_fields)
"""Dialplan ``compliance`` prompts a pack may require."""
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_ID = r"^[a-z]{2}(-[a-z0-9]+)?\.[a-z0-9_]+$"


class PackError(ValueError):
    """A pack file is invalid; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _span(text: str) -> str:
    m = _SPAN.match(text)
    bad = f"bad time span {text!r} (expected HH:MM-HH:MM, 00:00 to 24:00)"
    if not m:
        raise ValueError(bad)
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(bad)
    if h1 * 60 + m1 >= h2 * 60 + m2:
        raise ValueError(f"time span {text!r} ends before it starts")
    return text


SpanText = Annotated[str, AfterValidator(_span)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CiteModel(_Strict):
    """``cite:`` the law, its article and the source it was checked against."""

    law: str = Field(min_length=3)
    article: str | None = None
    source: str = Field(min_length=3)


class WeekModel(_Strict):
    """Allowed spans per weekday; a day left out has none."""

    mon: list[SpanText] = []
    tue: list[SpanText] = []
    wed: list[SpanText] = []
    thu: list[SpanText] = []
    fri: list[SpanText] = []
    sat: list[SpanText] = []
    sun: list[SpanText] = []


class _RuleBase(_Strict):
    id: str = Field(pattern=_ID)
    cite: CiteModel
    note: str | None = None
    legal_review: bool = False


class HoursModel(_RuleBase):
    """``kind: hours``: a weekly table, or per-subdivision tables (the strictest by default)."""

    kind: Literal["hours"]
    hours: WeekModel | None = None
    by_subdivision: dict[str, WeekModel] = {}


class HolidaysModel(_RuleBase):
    """``kind: holidays``: no calls on public holidays (``holidays`` library)."""

    kind: Literal["holidays"]


class CapModel(_RuleBase):
    """``kind: cap``: at most ``max`` attempts in ``days`` calendar days."""

    kind: Literal["cap"]
    max: int = Field(ge=1, le=100)
    days: int = Field(ge=1, le=366)
    channels: list[Literal[(*r.CHANNELS, "any")]] = ["voice"]  # type: ignore[valid-type]
    """Channels whose attempts count; ``any`` counts them all."""
    after_conversation: bool = False
    scope: Literal["debt", "person"] = "debt"
    """Count this debt's attempts, or the person's about all their debts with the creditor."""


class QuietModel(_RuleBase):
    """``kind: after_conversation``: no call within ``days`` days of a conversation."""

    kind: Literal["after_conversation"]
    days: int = Field(ge=1, le=366)
    scope: Literal["debt", "person"] = "debt"


class SingleChannelModel(_RuleBase):
    """``kind: single_channel``: one channel per ``days`` days."""

    kind: Literal["single_channel"]
    days: int = Field(ge=1, le=366)
    after_conversation: bool = True
    scope: Literal["debt", "person"] = "debt"


class RestrictionModel(_RuleBase):
    """``kind: restriction``: these flags forbid calls."""

    kind: Literal["restriction"]
    flags: list[Literal[r.FLAGS]] = Field(min_length=1)  # type: ignore[valid-type]


class ChannelModel(_RuleBase):
    """``kind: authorized_channel``: the channel needs the debtor's authorization."""

    kind: Literal["authorized_channel"]
    phone_types: list[Literal["mobile", "fixed"]] = []


class StatedModel(_RuleBase):
    """``kind: stated_preferences``: inconvenient times and no calls at work when told."""

    kind: Literal["stated_preferences"]


RuleModel = Annotated[
    HoursModel
    | HolidaysModel
    | CapModel
    | QuietModel
    | SingleChannelModel
    | RestrictionModel
    | ChannelModel
    | StatedModel,
    Field(discriminator="kind"),
]


class PromptModel(_Strict):
    """A dialplan ``compliance`` prompt the jurisdiction requires."""

    prompt: Literal[PROMPT_KEYS]  # type: ignore[valid-type]
    cite: CiteModel


class OverrideModel(_Strict):
    """Rules a subdivision adds (they can only make the pack stricter)."""

    name: str
    rules: list[RuleModel] = Field(min_length=1)


class PackModel(_Strict):
    """A pack file."""

    id: str = Field(pattern=r"^[A-Z]{2}$")
    name: str
    country: str
    default_timezone: str
    legal_review: bool = False
    note: str | None = None
    required_prompts: list[PromptModel] = []
    rules: list[RuleModel] = Field(min_length=1)
    overrides: dict[str, OverrideModel] = {}


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _path(tree: Any, loc: tuple[Any, ...]) -> list[Any]:
    """Drop the union tags pydantic adds (a rule's ``kind``, ``list[...]``) that are not keys."""
    out: list[Any] = []
    node, prev = tree, None
    for key in loc:
        tagged = isinstance(prev, int) and isinstance(node, dict) and key == node.get("kind")
        if tagged or (isinstance(key, str) and ("[" in key or key.startswith("literal"))):
            prev = None
            continue
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            node = None
        out.append(key)
        prev = key
    return out


def _message(err: Any, path: list[Any]) -> str:
    kind, last = err["type"], path[-1] if path else ""
    if kind == "union_tag_invalid":
        return f"unknown rule kind {err['ctx']['tag']!r} (expected {err['ctx']['expected_tags']})"
    if kind == "extra_forbidden":
        in_week = len(path) >= 2 and path[-2] == "hours"
        if in_week or (len(path) >= 3 and path[-3] == "by_subdivision"):
            return f"unknown weekday {last!r} (expected one of {', '.join(r.WEEKDAYS)})"
        return f"unknown field {last!r}"
    if kind == "missing" and last == "cite":
        return "missing citation (cite: law, article, source)"
    if kind == "missing":
        return f"missing field {last!r}"
    return str(err["msg"]).removeprefix("Value error, ")


def _semantic(model: PackModel) -> Iterator[tuple[tuple[Any, ...], str]]:
    supported = holidays.list_supported_countries()
    if model.country not in supported:
        yield ("country",), f"unknown country {model.country!r} for the holidays library"
    subdivisions = set(supported.get(model.country, []))
    try:
        r.zone(model.default_timezone)
    except ValueError as exc:
        yield ("default_timezone",), str(exc)
    seen: set[str] = set()
    groups = [(("rules",), model.rules)] + [
        (("overrides", k, "rules"), o.rules) for k, o in model.overrides.items()
    ]
    for key in model.overrides:
        if subdivisions and key not in subdivisions:
            yield ("overrides", key), f"unknown subdivision {key!r} of {model.country}"
    for base, rule_list in groups:
        for i, rule in enumerate(rule_list):
            if rule.id in seen:
                yield (*base, i, "id"), f"duplicate rule id {rule.id!r}"
            seen.add(rule.id)
            if not rule.id.startswith(model.id.lower()):
                yield (*base, i, "id"), f"rule id must start with {model.id.lower()!r}"
            if isinstance(rule, HoursModel):
                yield from _check_hours(rule, (*base, i), subdivisions, model.country)


def _check_hours(
    rule: HoursModel, at: tuple[Any, ...], subdivisions: set[str], country: str
) -> Iterator[tuple[tuple[Any, ...], str]]:
    if rule.hours is None and not rule.by_subdivision:
        yield at, "an hours rule needs `hours` or `by_subdivision`"
        return
    for key in rule.by_subdivision:
        if subdivisions and key not in subdivisions:
            yield (*at, "by_subdivision", key), f"unknown subdivision {key!r} of {country}"
    weeks = [_week(w) for w in rule.by_subdivision.values()]
    if rule.hours is None and not any(any(d) for d in r.intersect_weeks(weeks)):
        yield (*at, "by_subdivision"), "the strictest table allows no hours at all"


def _week(model: WeekModel) -> r.Week:
    def spans(texts: list[str]) -> tuple[r.Span, ...]:
        out = []
        for text in texts:
            h1, m1, h2, m2 = (int(g) for g in _SPAN.match(text).groups())  # type: ignore[union-attr]
            out.append((h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60))
        return tuple(sorted(out))

    return tuple(spans(getattr(model, day)) for day in r.WEEKDAYS)


def _cite(c: CiteModel) -> r.Citation:
    return r.Citation(law=c.law, source=c.source, article=c.article)


def _compile(rule: RuleModel) -> r.Rule:
    cite = _cite(rule.cite)
    if isinstance(rule, HoursModel):
        by_sub = {k.upper(): _week(w) for k, w in rule.by_subdivision.items()}
        default = _week(rule.hours) if rule.hours else r.intersect_weeks(list(by_sub.values()))
        return kinds.Hours(rule.id, cite, default, by_sub)
    if isinstance(rule, HolidaysModel):
        return kinds.Holidays(rule.id, cite)
    if isinstance(rule, CapModel):
        channels = None if "any" in rule.channels else frozenset(rule.channels)
        return kinds.Cap(
            rule.id,
            cite,
            rule.max,
            rule.days,
            channels,
            rule.after_conversation,
            scope=rule.scope,
        )
    if isinstance(rule, QuietModel):
        return kinds.QuietAfterConversation(rule.id, cite, rule.days, scope=rule.scope)
    if isinstance(rule, SingleChannelModel):
        return kinds.SingleChannel(
            rule.id, cite, rule.days, rule.after_conversation, scope=rule.scope
        )
    if isinstance(rule, RestrictionModel):
        return kinds.Restriction(rule.id, cite, frozenset(rule.flags))
    if isinstance(rule, ChannelModel):
        return kinds.AuthorizedChannel(rule.id, cite, frozenset(rule.phone_types))
    return kinds.StatedPreferences(rule.id, cite)


def load_pack_text(text: str, file: str = "<pack>") -> r.Pack:
    """Validate pack YAML text; raise :class:`PackError` naming file, line and field."""
    try:
        tree = parse_yaml(text, file)
    except DialplanError as exc:
        raise PackError(exc.problems) from None
    if not isinstance(tree, dict):
        raise PackError([Problem(file, 1, "", "a pack is a mapping of sections")])
    try:
        model = PackModel.model_validate(_plain(tree))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = _path(tree, tuple(err["loc"]))
            if err["type"] == "union_tag_invalid":
                path.append("kind")
            field = ".".join(str(p) for p in path)
            problems.append(Problem(file, line_of(tree, path), field, _message(err, path)))
        raise PackError(problems) from None
    issues = list(_semantic(model))
    if issues:
        raise PackError(
            [Problem(file, line_of(tree, p), ".".join(map(str, p)), m) for p, m in issues]
        )
    return r.Pack(
        id=model.id,
        name=model.name,
        country=model.country,
        default_timezone=model.default_timezone,
        rules=tuple(_compile(x) for x in model.rules),
        overrides={
            k.upper(): tuple(_compile(x) for x in o.rules) for k, o in model.overrides.items()
        },
        required_prompts=tuple(
            r.RequiredPrompt(p.prompt, _cite(p.cite)) for p in model.required_prompts
        ),
        legal_review=model.legal_review or any(x.legal_review for x in model.rules),
        file=file,
    )


def load_pack(path: str | Path) -> r.Pack:
    """Load and validate one pack file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PackError([Problem(str(p), None, "", f"cannot read: {exc.strerror}")]) from None
    return load_pack_text(text, p.name if p.parent == PACKS_DIR else str(p))


@lru_cache(maxsize=4)
def load_packs(directory: str | None = None) -> dict[str, r.Pack]:
    """Every pack in a directory (default: the shipped ones), by jurisdiction id."""
    packs = {}
    for path in sorted(Path(directory or PACKS_DIR).glob("*.yaml")):
        pack = load_pack(path)
        packs[pack.id] = pack
    return packs


def get_pack(jurisdiction: str, directory: str | None = None) -> r.Pack:
    """The pack of a jurisdiction (``US``, ``CO``...); ``KeyError`` names the known ones."""
    packs = load_packs(directory)
    try:
        return packs[jurisdiction.upper()]
    except KeyError:
        raise KeyError(
            f"no compliance pack {jurisdiction!r} (known: {', '.join(sorted(packs))})"
        ) from None


def dialplan_issues(pack: r.Pack, plan: Dialplan) -> list[tuple[tuple[str, ...], str]]:
    """Required disclosures the dialplan lacks, as ``(path, message)`` like the dialplan checks.

    ``voiceagent.dialog.checks`` already checks where each ``compliance`` prompt is said; this
    checks that each prompt the jurisdiction requires is set at all.
    """
    issues: list[tuple[tuple[str, ...], str]] = []
    for req in pack.required_prompts:
        if getattr(plan.compliance, req.prompt, None) is None:
            msg = f"required by compliance pack {pack.id}: {req.cite}"
            issues.append((("compliance", req.prompt), msg))
    return issues
