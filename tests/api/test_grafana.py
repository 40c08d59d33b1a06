"""The Grafana dashboard only plots metrics that voiceagent/metrics.py defines."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT
from voiceagent import metrics


def _defined() -> set[str]:
    names = {name for name, _ in metrics.DAY_FIGURES.values()}
    names |= {metrics.PROMISED[0], "voiceagent_calls_in_progress", "voiceagent_campaigns"}
    for family in metrics.REGISTRY.collect():
        names |= {sample.name for sample in family.samples} | {family.name}
    for hist in (metrics.TURN_LATENCY, metrics.LOOP_LAG_SAMPLES):
        names.add(hist._name + "_bucket")  # type: ignore[attr-defined]
    names |= {metrics.CALLS_ENDED._name + "_total", metrics.WEBHOOK_DELIVERIES._name + "_total"}  # type: ignore[attr-defined]
    return names


def test_dashboard_metrics_exist() -> None:
    dashboard = json.loads((ROOT / "grafana" / "voiceagent.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"voiceagent_[a-z_]+", e)}
    assert len(used) >= 15
    assert used - _defined() == set()
