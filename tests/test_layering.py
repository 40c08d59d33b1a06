"""Imports run in one direction (STYLE.md section 1)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "voiceagent"
# package -> packages it must never import
FORBIDDEN = {
    "nlu": ("dialog", "call", "telephony", "crm", "dialer", "api", "cli", "worker"),
    "dialog": ("call", "telephony", "crm", "dialer", "api", "cli", "worker"),
    "audio": ("vad", "asr", "tts", "telephony", "call", "dialog", "crm", "dialer", "api"),
    "crm": ("call", "api", "cli", "worker"),
    "call": ("worker", "dialer", "api", "cli"),
    "telephony": ("call", "crm", "worker", "dialer", "api", "cli"),
    "dialer": ("worker", "api", "cli"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_imports_flow_one_way() -> None:
    problems = []
    for package, forbidden in FORBIDDEN.items():
        for path in (PKG / package).rglob("*.py") if (PKG / package).exists() else []:
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "voiceagent" and len(parts) > 1 and parts[1] in forbidden:
                    problems.append(f"{path.relative_to(PKG)} imports {name}")
    assert not problems, problems


def test_heavy_engines_are_not_imported_by_the_dialog() -> None:
    for path in list((PKG / "dialog").rglob("*.py")) + list((PKG / "nlu").rglob("*.py")):
        for name in _imports(path):
            assert name.split(".")[0] not in ("vosk", "piper", "onnxruntime", "faster_whisper"), (
                path
            )
