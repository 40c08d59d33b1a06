"""Run a command in a throwaway network namespace that has only loopback (``unshare -rn``).

Hostile SIP must never reach a real network: a torture message can make a SIP stack answer a
broadcast Via or resolve an outside host. ``unshare -rn`` gives the child a new user namespace
(root inside, no privilege outside) and a new network namespace whose only link is ``lo``,
which ``ip link set lo up`` brings up. Every process the child starts (kamailio, sipp, the
agent) inherits the namespace and is gone when the child exits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

INSIDE_ENV = "VOICEAGENT_IN_NETNS"
"""Set to ``1`` in the namespace's environment."""
_PRELUDE = 'ip link set lo up && exec "$@"'


def available() -> bool:
    """Whether this machine can create a loopback-only namespace (tools present, probe works)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    try:
        probe = subprocess.run(
            ["unshare", "-rn", "sh", "-c", _PRELUDE, "sh", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def inside() -> bool:
    """True in a process started by :func:`run`."""
    return os.environ.get(INSIDE_ENV) == "1"


def run(
    argv: list[str], timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a fresh loopback-only namespace; output captured, killed at ``timeout_s``."""
    child_env = dict(os.environ if env is None else env)
    child_env[INSIDE_ENV] = "1"
    return subprocess.run(
        ["unshare", "-rn", "sh", "-c", _PRELUDE, "sh", *argv],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=child_env,
    )


@dataclass(frozen=True)
class Outcome:
    """One test's result in a pytest run inside the namespace."""

    status: str
    """``passed``, ``failed``, ``error`` or ``skipped``."""
    detail: str = ""


def run_pytest(
    path: Path,
    functions: str,
    junit: Path,
    timeout_s: float,
    extra_env: dict[str, str] | None = None,
) -> tuple[dict[str, Outcome], subprocess.CompletedProcess[str]]:
    """Run the test functions of ``path`` matching ``functions`` (a glob) inside a namespace."""
    argv = [sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:cacheprovider"]
    argv += ["-o", f"python_functions={functions}", "-o", "addopts=", f"--junitxml={junit}"]
    env = dict(os.environ) | (extra_env or {})
    proc = run(argv, timeout_s, env)
    outcomes: dict[str, Outcome] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            status, detail = "passed", ""
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    status = "failed" if tag == "failure" else tag
                    detail = (node.get("message") or "") + "\n" + (node.text or "")
                    break
            outcomes[case.get("name", "")] = Outcome(status, detail)
    return outcomes, proc
