"""SIP load: N concurrent sipp calls through kamailio, each bound to a real CallSession.

The agent's side is the real endpoint (rfcvoip adapter), CallSession, WebRTC VAD and dialog;
the recognizer is scripted (it "hears" the caller's espeak-ng phrase at each end of utterance)
and the voice is the fake synthesizer, so the figures isolate telephony and the call pipeline.
A 1-call baseline runs first in the same process. Figures: sipp rc, 200/BYE counts, agent CPU
seconds per call-minute (the whole process: SIP, RTP threads, sessions), RSS, turn latency
p50/p95 from the sessions' TurnMetrics, and RTP TX pacing jitter seen at the callers' socket.

    .venv/bin/python benchmarks/sip_load.py --calls 20 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.telephony.test_sip_load import run_load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--baseline-seconds", type=float, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base_s = args.baseline_seconds or args.seconds
        for label, calls, seconds in (("baseline", 1, base_s), ("load", args.calls, args.seconds)):
            report = run_load(Path(tmp) / label, calls, seconds)
            figures = {"run": label} | report.summary()
            rows.append(figures)
            print(json.dumps(figures), flush=True)
    ok = all(r["sipp_rc"] == 0 and r["bye_200_ok"] == r["calls"] for r in rows)
    print("all answered and ended cleanly" if ok else "FAILED: see sipp_rc / BYE counts")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
