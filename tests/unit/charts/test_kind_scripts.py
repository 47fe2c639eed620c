"""hack/kind-up.sh and kind-down.sh, run against stand-ins for docker, kind, helm and kubectl
(tests/unit/charts/kindstubs.py): what they would do to a user's Docker and kind, checked here
where there is no Docker engine. tests/e2e/test_kind.py runs them for real.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiops.api import Subject
from ratelimiter_subject.config import RateLimiterConfig
from tests.unit.charts.helm import REPO, template
from tests.unit.charts.kindstubs import Call, Stubs, make_stubs

UP = REPO / "hack" / "kind-up.sh"
DOWN = REPO / "hack" / "kind-down.sh"
CLUSTER = "aiops-test"
FAKE_KEY = "sk-ant-FAKE-0123456789"


@pytest.fixture
def stubs(tmp_path: Path) -> Stubs:
    return make_stubs(
        tmp_path,
        AIOPS_KIND_CLUSTER=CLUSTER,
        AIOPS_KIND_KUBECONFIG=tmp_path / "kind" / "kubeconfig",
    )


def helm_installs(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.tool == "helm" and c.has("upgrade", "--install")]


def set_values(call: Call) -> dict[str, str]:
    out = {}
    for i, a in enumerate(call.argv):
        if a in ("--set", "--set-string"):
            key, _, value = call.argv[i + 1].partition("=")
            out[key] = value
    return out


def arg(call: Call, flag: str) -> str:
    return call.argv[call.argv.index(flag) + 1]


# --- Docker first ---------------------------------------------------------------------------


@pytest.mark.parametrize("script", [UP, DOWN], ids=["up", "down"])
def test_without_a_docker_engine_it_stops_at_once_with_one_line(stubs: Stubs, script: Path) -> None:
    started = time.monotonic()
    proc = stubs.run(script, {"STUB_DOCKER_DOWN": "1"})
    assert proc.returncode != 0
    assert time.monotonic() - started < 20  # no build, no cluster: before anything slow
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "'docker info' failed: Cannot connect to the Docker daemon" in lines[0]
    assert lines[0].startswith("aiops: ")
    assert [c.tool for c in stubs.calls()] == ["docker"]  # nothing but `docker info`


@pytest.mark.parametrize("script", [UP, DOWN], ids=["up", "down"])
def test_without_docker_installed_it_says_so(stubs: Stubs, tmp_path: Path, script: Path) -> None:
    # A PATH with what the script uses from the system, and no docker.
    path = tmp_path / "nodocker"
    path.mkdir()
    for tool in ("dirname", "grep", "sed", "tail", "tr", "mkdir", "chmod", "cat", "rm"):
        found = shutil.which(tool)
        assert found, tool
        (path / tool).symlink_to(found)
    proc = stubs.run(script, path=str(path))
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"aiops: {script.stem} needs Docker, and the docker command is not installed"
    ]
    assert stubs.calls() == []


# --- a full run -------------------------------------------------------------------------------


def test_kind_up_builds_loads_and_installs_in_order(stubs: Stubs) -> None:
    proc = stubs.run(UP)
    assert proc.returncode == 0, proc.stderr
    calls = stubs.calls()
    tools = [c.tool for c in calls]
    assert tools[0] == "docker" and calls[0].argv == ["info"]

    creates = [c for c in calls if c.tool == "kind" and c.has("create", "cluster")]
    assert len(creates) == 1 and arg(creates[0], "--name") == CLUSTER
    # The cluster's kubeconfig goes to its own file, never to ~/.kube/config.
    kubeconfig = stubs.env["AIOPS_KIND_KUBECONFIG"]
    assert arg(creates[0], "--kubeconfig") == kubeconfig
    assert Path(kubeconfig).read_text().startswith("apiVersion: v1")
    assert oct(Path(kubeconfig).stat().st_mode & 0o777) == "0o600"
    for c in calls:
        if c.tool in ("kubectl", "helm"):
            assert arg(c, "--kubeconfig") == kubeconfig, c.argv

    # Each image is built from its Dockerfile and context, tagged by id, loaded into kind.
    builds = {arg(c, "--tag"): c for c in calls if c.tool == "docker" and c.has("build")}
    assert set(builds) == {"aiops-operator:dev", "aiops/ratelimiter:dev"}
    op, rl = builds["aiops-operator:dev"], builds["aiops/ratelimiter:dev"]
    assert (arg(op, "--file"), op.argv[-1]) == (f"{REPO}/operator/Dockerfile", f"{REPO}/.")
    assert (arg(rl, "--file"), rl.argv[-1]) == (
        f"{REPO}/subjects/ratelimiter/Dockerfile",
        f"{REPO}/subjects/ratelimiter",
    )
    loads = [c for c in calls if c.tool == "kind" and c.has("load", "docker-image")]
    loaded = {c.argv[-1] for c in loads}
    assert all(arg(c, "--name") == CLUSTER for c in loads)

    installs = helm_installs(calls)
    assert [c.argv[c.argv.index("--install") + 1] for c in installs] == ["aiops", "tikv", "rl"]
    aiops, tikv, rl_install = installs
    assert calls.index(max(loads, key=calls.index)) < calls.index(aiops)
    for c in installs:
        assert "--wait" in c.argv
    op_values = set_values(aiops)
    assert f"{op_values['image.repository']}:{op_values['image.tag']}" in loaded
    assert re.fullmatch(r"dev-[0-9a-f]{12}", op_values["image.tag"])
    assert op_values["watch.namespaces"] == "{tikv,ratelimiter}"
    assert op_values["prometheus.enabled"] == "true"
    assert (
        arg(aiops, "--namespace"),
        arg(tikv, "--namespace"),
        arg(rl_install, "--namespace"),
    ) == ("aiops-system", "tikv", "ratelimiter")
    rl_values = set_values(rl_install)
    assert f"{rl_values['image.repository']}:{rl_values['image.tag']}" in loaded

    # TiKV's Subject points at the Prometheus the operator chart runs for this release.
    tikv_values = set_values(tikv)
    assert tikv_values["subject.enabled"] == "true"
    prom = template(
        "aiops-operator",
        {"prometheus": {"enabled": True}},
        release="aiops",
        namespace="aiops-system",
    )
    svc = prom.one("Service", "aiops-prometheus", "aiops-system")
    assert tikv_values["subject.prometheusUrl"] == (
        f"http://{svc['metadata']['name']}.aiops-system.svc:{svc['spec']['ports'][0]['port']}"
    )


def applied_subjects(calls: list[Call]) -> list[dict[str, Any]]:
    docs = []
    for c in calls:
        if c.tool == "kubectl" and c.has("apply") and c.stdin:
            docs += [d for d in yaml.safe_load_all(c.stdin) if d and d["kind"] == "Subject"]
    return docs


def test_the_rate_limiter_subject_is_valid_and_names_what_the_chart_runs(stubs: Stubs) -> None:
    assert stubs.run(UP).returncode == 0
    (doc,) = applied_subjects(stubs.calls())
    subject = Subject.model_validate(doc)  # the CRD's model: what the API server will check
    assert subject.spec.type == "ratelimiter"
    RateLimiterConfig.model_validate(subject.spec.config)  # the plugin's own check
    raw = doc["spec"]["config"]
    rendered = template("ratelimiter", release="rl", namespace="ratelimiter")
    services = {
        (s["metadata"]["name"], p["port"])
        for s in rendered.all("Service")
        for p in s["spec"]["ports"]
    }
    urls = [*raw["adminUrls"], raw["redisUrl"], raw["toxiproxyUrl"]]
    for url in urls:
        m = re.match(r"^\w+://([^.]+)\.ratelimiter\.svc:(\d+)", url)
        assert m, url
        assert (m.group(1), int(m.group(2))) in services, f"{url}: no such Service port"
    selector = doc["spec"]["workload"]["selector"]["matchLabels"]
    (nodes,) = rendered.all("StatefulSet")
    pod_labels = nodes["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert doc["metadata"]["namespace"] == "ratelimiter"


def test_second_run_reuses_the_cluster_and_a_rebuilt_image_gets_a_new_tag(stubs: Stubs) -> None:
    assert stubs.run(UP).returncode == 0
    first = set_values(helm_installs(stubs.calls())[0])["image.tag"]
    stubs.clear()
    assert stubs.run(UP).returncode == 0
    calls = stubs.calls()
    assert not [c for c in calls if c.tool == "kind" and c.has("create", "cluster")]
    assert set_values(helm_installs(calls)[0])["image.tag"] == first  # same image: no rollout
    stubs.clear()
    assert stubs.run(UP, {"STUB_IMAGE_SALT": "changed"}).returncode == 0
    assert set_values(helm_installs(stubs.calls())[0])["image.tag"] != first


def test_the_api_key_goes_through_stdin_only(stubs: Stubs) -> None:
    proc = stubs.run(UP, {"ANTHROPIC_API_KEY": FAKE_KEY})
    assert proc.returncode == 0, proc.stderr
    calls = stubs.calls()
    for c in calls:
        assert not [a for a in c.argv if FAKE_KEY in a], c.argv
    (secret,) = [c for c in calls if c.tool == "kubectl" and c.has("secret", "generic")]
    assert secret.stdin == FAKE_KEY
    aiops = helm_installs(calls)[0]
    assert set_values(aiops)["anthropic.existingSecret"] == "aiops-anthropic"
    assert FAKE_KEY not in proc.stdout + proc.stderr


def test_without_a_key_the_operator_chart_gets_no_secret(stubs: Stubs) -> None:
    proc = stubs.run(UP)
    calls = stubs.calls()
    assert not [c for c in calls if c.tool == "kubectl" and c.has("secret")]
    assert "anthropic.existingSecret" not in set_values(helm_installs(calls)[0])
    assert "runbook agent" in proc.stderr


def test_image_load_falls_back_to_a_single_platform_archive(stubs: Stubs) -> None:
    proc = stubs.run(UP, {"STUB_KIND_LOAD_FAILS": "1"})
    assert proc.returncode == 0, proc.stderr
    calls = stubs.calls()
    saves = [c for c in calls if c.tool == "docker" and c.has("image", "save")]
    archives = [c for c in calls if c.tool == "kind" and c.has("load", "image-archive")]
    assert len(saves) == len(archives) == 2
    assert all(arg(c, "--platform") == "linux/arm64" for c in saves)
    assert {arg(c, "--output") for c in saves} == {c.argv[-1] for c in archives}
    assert not list(Path(stubs.state).glob("aiops-image.*"))  # archives removed


def test_kind_down_deletes_the_cluster_then_has_nothing_to_do(stubs: Stubs) -> None:
    assert stubs.run(UP).returncode == 0
    kubeconfig = Path(stubs.env["AIOPS_KIND_KUBECONFIG"])
    assert kubeconfig.exists()
    stubs.clear()
    proc = stubs.run(DOWN)
    assert proc.returncode == 0, proc.stderr
    deletes = [c for c in stubs.calls() if c.tool == "kind" and c.has("delete", "cluster")]
    assert len(deletes) == 1 and arg(deletes[0], "--name") == CLUSTER
    assert not kubeconfig.exists()
    stubs.clear()
    proc = stubs.run(DOWN)
    assert proc.returncode == 0
    assert f"no kind cluster {CLUSTER}" in proc.stderr
    assert not [c for c in stubs.calls() if c.tool == "kind" and c.has("delete")]


def test_scripts_are_executable() -> None:
    for script in (UP, DOWN):
        assert os.access(script, os.X_OK), script
