"""Every chart in charts/: `helm lint --strict` passes and `helm template` renders well-formed,
uniquely named objects, with its defaults and with a few value sets each (tests/unit/charts/
helm.py). The API server's own validation of these objects is tests/integration/charts."""

from __future__ import annotations

import pytest
import yaml

from tests.unit.charts.helm import (
    ALL_CHARTS,
    CHARTS,
    KUBE_VERSION,
    chart_cases,
    helm,
    template,
    value_sets,
)

CASES = chart_cases()
IDS = [f"{chart}-{name}" for chart, name in CASES]


def test_the_charts_the_kind_path_installs_are_all_here() -> None:
    assert {"aiops-operator", "ratelimiter", "tikv"} <= set(ALL_CHARTS)


@pytest.mark.parametrize(("chart", "values_name"), CASES, ids=IDS)
def test_helm_lint_strict(chart: str, values_name: str) -> None:
    proc = helm(
        "lint",
        "--strict",
        "--kube-version",
        KUBE_VERSION,
        str(CHARTS / chart),
        values=value_sets(chart)[values_name],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


@pytest.mark.parametrize(("chart", "values_name"), CASES, ids=IDS)
def test_helm_template_renders_named_unique_objects(chart: str, values_name: str) -> None:
    rendered = template(chart, value_sets(chart)[values_name])
    assert rendered.objects, f"{chart} rendered nothing"
    seen: set[tuple[str, str, str]] = set()
    for obj in rendered:
        assert obj.get("apiVersion") and obj.get("kind"), obj
        name = obj["metadata"].get("name")
        assert name, f"{obj['kind']} without a name"
        key = (obj["kind"], obj["metadata"].get("namespace", ""), name)
        assert key not in seen, f"{key} rendered twice"
        seen.add(key)


def test_the_operator_chart_refuses_a_kubernetes_without_crd_field_selectors() -> None:
    # 1.30 serves no selectableFields by default: the loops' lists by spec field would fail.
    old = helm("template", "aiops", str(CHARTS / "aiops-operator"), "--kube-version", "1.30.9")
    assert old.returncode != 0
    assert "requires kubeVersion: >=1.31.0-0" in old.stderr, old.stderr
    ok = helm("template", "aiops", str(CHARTS / "aiops-operator"), "--kube-version", "1.31.0")
    assert ok.returncode == 0, ok.stderr
    crds = [
        d for d in yaml.safe_load_all(ok.stdout) if d and d["kind"] == "CustomResourceDefinition"
    ]
    selectable = {
        c["spec"]["names"]["plural"]: [
            f["jsonPath"] for f in c["spec"]["versions"][0].get("selectableFields", [])
        ]
        for c in crds
    }
    assert selectable["incidents"] and selectable["chaos"] and selectable["approvals"], selectable
