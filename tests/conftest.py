from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIALPLANS = ROOT / "dialplans"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def root() -> Path:
    return ROOT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the NLU accuracy figures measured by tests/nlu/test_corpus.py."""
    try:
        from tests.nlu.test_corpus import ACCURACY
    except ImportError:
        return
    if not ACCURACY:
        return
    terminalreporter.section("NLU accuracy")
    for key in sorted(ACCURACY):
        row = ACCURACY[key]
        terminalreporter.write_line(
            f"{key:<16} n={int(row['n']):>3}  intent {row['intent']:6.1%}  "
            f"intent+slots {row['slots']:6.1%}"
        )
