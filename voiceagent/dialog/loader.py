"""Load a dialplan YAML file: parse, validate against the schema, cross-check, or fail clearly.

Every error names the file, the line and the field (``early.yaml:42: states.greeting.on.affirm:
unknown state 'verfy'``), so a plan is rejected when loaded, never in the middle of a call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from voiceagent.dialog.model import Dialplan


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a dialplan file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(top level)'}: {self.message}"


class DialplanError(ValueError):
    """A dialplan file is invalid; ``problems`` lists every error found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def _plain(node: Any) -> Any:
    """Convert ruamel's commented containers into plain dicts and lists."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def line_of(tree: Any, path: Iterable[Any]) -> int | None:
    """Return the 1-based line of a key path in a ruamel round-trip tree (nearest ancestor)."""
    node, line = tree, None
    for key in path:
        if isinstance(node, dict) and key in node:
            try:
                line = node.lc.key(key)[0] + 1  # type: ignore[attr-defined]
            except (AttributeError, KeyError, TypeError):
                pass
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            try:
                line = node.lc.item(key)[0] + 1  # type: ignore[attr-defined]
            except (AttributeError, KeyError, TypeError):
                pass
            node = node[key]
        # Keys that pydantic adds (a union member's tag such as "talk") are skipped.
    if line is None:
        try:
            line = tree.lc.line + 1
        except AttributeError:
            line = None
    return line


def _field(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def parse_yaml(text: str, file: str) -> Any:
    """Parse YAML 1.2 with line information ("no", "on" and "yes" stay strings)."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise DialplanError([Problem(file, line, "", f"YAML error: {message}")]) from None


def load_dialplan_text(text: str, file: str = "<dialplan>") -> Dialplan:
    """Validate dialplan YAML text; raise DialplanError naming file, line and field."""
    from voiceagent.dialog.checks import check_plan

    tree = parse_yaml(text, file)
    if not isinstance(tree, dict):
        raise DialplanError([Problem(file, 1, "", "a dialplan is a mapping of sections")])
    try:
        plan = Dialplan.model_validate(_plain(tree))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
            problems.append(
                Problem(file, line_of(tree, loc), _field(_named(tree, loc)), err["msg"])
            )
        raise DialplanError(problems) from None
    issues = check_plan(plan)
    if issues:
        raise DialplanError(
            [Problem(file, line_of(tree, path), _field(path), msg) for path, msg in issues]
        )
    return plan


def _named(tree: Any, loc: list[Any]) -> list[Any]:
    """Drop the union tags pydantic adds to error locations ("talk", "str") that are not keys."""
    out, node = [], tree
    for key in loc:
        if isinstance(node, dict) and key in node:
            out.append(key)
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            out.append(key)
            node = node[key]
        elif key in ("str", "Prompt") or (
            isinstance(node, dict) and key == node.get("kind", "talk")
        ):
            continue
        else:
            out.append(key)  # a missing required field: name it
            node = None
    return out


def load_dialplan(path: str | Path) -> Dialplan:
    """Load and validate a dialplan file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise DialplanError([Problem(str(p), None, "", f"cannot read: {exc.strerror}")]) from None
    return load_dialplan_text(text, str(p))


@lru_cache(maxsize=64)
def load_dialplan_cached(path: str) -> Dialplan:
    """Load a dialplan once per process (plans are immutable)."""
    return load_dialplan(path)


def schema_json() -> str:
    """The JSON Schema of a dialplan (written to ``dialplans/dialplan.schema.json``)."""
    return json.dumps(Dialplan.model_json_schema(), indent=2, ensure_ascii=False) + "\n"
