"""The chart's Grafana dashboard reads exactly the operator's metrics: every one it defines,
nothing it does not (a real Prometheus runs its expressions in tests/integration/metrics)."""

from __future__ import annotations

from prometheus_client.registry import REGISTRY

import aiops.metrics  # noqa: F401 - defines the metrics
from tests.fixtures import dashboard

SUFFIX = {"counter": "_total", "gauge": "", "histogram": ""}


def operator_metrics() -> set[str]:
    """Every aiops_* family in the registry, as the dashboard names it."""
    return {m.name + SUFFIX[m.type] for m in REGISTRY.collect() if m.name.startswith("aiops_")}


def test_the_dashboard_reads_every_operator_metric_and_no_other() -> None:
    defined = operator_metrics()
    assert len(defined) == 19, sorted(defined)
    assert dashboard.metrics() == defined


def test_every_panel_queries_the_chosen_prometheus() -> None:
    dash = dashboard.dashboard()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    (source,) = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_subject_filtered_panels_use_the_subject_variable() -> None:
    """A panel of a per-Subject metric follows the Subject picker."""
    per_subject = ("aiops_incident", "aiops_approvals", "aiops_chaos", "aiops_observation")
    for expr in dashboard.expressions():
        if expr.startswith("label_values"):
            continue
        if any(name in expr for name in per_subject):
            assert 'subject=~"$subject"' in expr, expr
