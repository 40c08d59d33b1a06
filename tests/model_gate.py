"""Model-backed tests never skip silently: under VOICEAGENT_REQUIRE_MODELS=1 a missing model fails.

Use ``need(path_or_flag, "what")`` at the top of a test (or in a fixture) that needs a real model.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REQUIRED = os.environ.get("VOICEAGENT_REQUIRE_MODELS", "") not in ("", "0", "false", "False")


def need(available: bool | Path | str | None, what: str) -> None:
    """Skip locally, fail in CI, when a model (or the tool that makes test audio) is missing."""
    ok = Path(available).exists() if isinstance(available, str | Path) else bool(available)
    if ok:
        return
    message = f"missing model or tool: {what}"
    if REQUIRED:
        pytest.fail(message + " (VOICEAGENT_REQUIRE_MODELS=1 forbids skipping)", pytrace=False)
    pytest.skip(message)
