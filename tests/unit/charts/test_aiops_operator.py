"""The aiops-operator chart, rendered: what an SRE installing it gets.

Watch modes and their RBAC, the Deployment's arguments (checked against the real CLI), the
audit volume, the switch, the API objects being exactly the generated ones, no Secret material,
separation of duties (the operator's ServiceAccount can never create an Approval), and the
schema refusing bad values with a message that says what is wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.charts.helm import (
    NAMESPACE,
    REPO,
    VALUE_SETS,
    Rendered,
    template,
    template_error,
)

CHART = "aiops-operator"
SA = "aiops-operator"
SA_USER = f"system:serviceaccount:{NAMESPACE}:{SA}"
CRDS = REPO / "crds"
WRITE_VERBS = {"create", "update", "patch", "*"}


def render(values: dict[str, Any] | None = None) -> Rendered:
    return template(CHART, values)


def container(r: Rendered) -> dict[str, Any]:
    pod = r.one("Deployment", "aiops-operator", NAMESPACE)["spec"]["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "operator"]
    return c


def env(r: Rendered) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(r)["env"]}


def bindings_of_operator(r: Rendered) -> list[dict[str, Any]]:
    out = []
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for b in r.all(kind):
            for s in b.get("subjects", []):
                if s["kind"] == "ServiceAccount" and s["name"] == SA:
                    out.append(b)
    return out


def operator_role_bindings(r: Rendered, kind: str) -> list[dict[str, Any]]:
    return [
        b
        for b in bindings_of_operator(r)
        if b["kind"] == kind
        and b["roleRef"]
        == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "aiops-operator",
        }
    ]


# --- watch modes ----------------------------------------------------------------------------


def test_default_is_namespaced_on_the_release_namespace() -> None:
    r = render()
    args = container(r)["args"]
    assert [a for a in args if a.startswith(("--namespace", "--all"))] == [
        f"--namespace={NAMESPACE}"
    ]
    (rb,) = operator_role_bindings(r, "RoleBinding")
    assert rb["metadata"]["namespace"] == NAMESPACE
    assert operator_role_bindings(r, "ClusterRoleBinding") == []


def test_namespaced_mode_binds_and_watches_exactly_the_listed_namespaces() -> None:
    r = render({"watch": {"namespaces": ["team-a", "team-b"]}})
    args = container(r)["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--all-namespaces" not in args and f"--namespace={NAMESPACE}" not in args
    bound = sorted(b["metadata"]["namespace"] for b in operator_role_bindings(r, "RoleBinding"))
    assert bound == ["team-a", "team-b"]
    assert operator_role_bindings(r, "ClusterRoleBinding") == []
    # Nothing cluster-wide beyond kopf's read-only discovery of namespaces and CRDs.
    for crb in r.all("ClusterRoleBinding"):
        role = r.one("ClusterRole", crb["roleRef"]["name"])
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
            assert set(rule["resources"]) <= {"namespaces", "customresourcedefinitions"}, rule


def test_cluster_mode_watches_everything_through_one_cluster_role_binding() -> None:
    r = render({"watch": {"mode": "cluster"}})
    args = container(r)["args"]
    assert "--all-namespaces" in args
    assert not [a for a in args if a.startswith("--namespace")]
    (crb,) = operator_role_bindings(r, "ClusterRoleBinding")
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": SA, "namespace": NAMESPACE}]
    assert operator_role_bindings(r, "RoleBinding") == []


def test_cluster_mode_with_namespaces_is_refused_with_a_reason() -> None:
    err = template_error(CHART, {"watch": {"mode": "cluster", "namespaces": ["a"]}})
    assert "watch.namespaces is for watch.mode=namespaced" in err


def test_the_rendered_arguments_are_ones_the_cli_accepts() -> None:
    """The image's entrypoint is `aiops operator run`; its flags must exist (click refuses an
    unknown option while parsing, before --help is honoured)."""
    for name, values in VALUE_SETS[CHART].items():
        args = container(render(values))["args"]
        proc = subprocess.run(
            [sys.executable, "-m", "aiops.cli.main", "operator", "run", *args, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, (
            f"{name}: `aiops operator run {' '.join(args)}`:\n"
            + (proc.stdout + proc.stderr)[-1500:]
        )


# --- liveness -------------------------------------------------------------------------------


def test_liveness_endpoint_and_probes_agree() -> None:
    c = container(render())
    assert "--liveness=http://0.0.0.0:8080/healthz" in c["args"]
    assert {"name": "health", "containerPort": 8080} in c["ports"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    off = container(render({"liveness": {"enabled": False}}))
    assert not [a for a in off["args"] if a.startswith("--liveness")]
    assert "livenessProbe" not in off and "readinessProbe" not in off


# --- the Deployment -------------------------------------------------------------------------


def test_two_replicas_one_active_non_root() -> None:
    r = render()
    dep = r.one("Deployment", "aiops-operator", NAMESPACE)
    # Two replicas with kopf peering: one active, one standby; a rollout starts the new pod
    # beside the old (it stands by), never leaving none.
    assert dep["spec"]["replicas"] == 2
    assert "--peering=aiops-operator" in container(r)["args"]
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == SA
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container(r)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert r.one("ServiceAccount", SA, NAMESPACE)


def test_image_defaults_to_the_app_version_and_takes_a_tag() -> None:
    chart = yaml.safe_load((REPO / "charts" / CHART / "Chart.yaml").read_text())
    assert container(render())["image"] == f"aiops-operator:{chart['appVersion']}"
    image = {"repository": "reg/aiops", "tag": "dev-1", "pullPolicy": "Never"}
    c = container(render({"image": image}))
    assert (c["image"], c["imagePullPolicy"]) == ("reg/aiops:dev-1", "Never")


def test_environment_the_operator_reads() -> None:
    r = render()
    e = env(r)
    assert e["AIOPS_OPERATOR_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert (
        e["AIOPS_APPROVAL_TIMEOUT"]["value"],
        e["AIOPS_VERIFY_TIMEOUT"]["value"],
        e["AIOPS_ACTIONS_PER_INCIDENT"]["value"],
    ) == ("1800", "60", "5")
    assert (e["AIOPS_CHAOS_MAX_DURATION"]["value"], e["AIOPS_CHAOS_SETTLE_TIMEOUT"]["value"]) == (
        "1h",
        "5m",
    )
    assert "ANTHROPIC_API_KEY" not in e and "ANTHROPIC_BASE_URL" not in e
    e = env(
        render(
            {
                "settings": {
                    "approvalTimeoutSeconds": 600,
                    "actionsPerIncident": 2,
                    "chaosMaxDuration": "10m",
                },
                "anthropic": {"baseUrl": "http://127.0.0.1:9999"},
            }
        )
    )
    assert (e["AIOPS_APPROVAL_TIMEOUT"]["value"], e["AIOPS_ACTIONS_PER_INCIDENT"]["value"]) == (
        "600",
        "2",
    )
    assert e["AIOPS_CHAOS_MAX_DURATION"]["value"] == "10m"
    assert e["ANTHROPIC_BASE_URL"]["value"] == "http://127.0.0.1:9999"


def test_a_release_can_be_one_shard_and_a_bad_shard_is_refused() -> None:
    assert env(render({"shard": "1/3"}))["AIOPS_SHARD"]["value"] == "1/3"
    assert env(render({}))["AIOPS_SHARD"]["value"] == ""  # the operator reads "" as none
    assert "shard" in template_error(CHART, {"shard": "one of three"})


# What the chart leaves to the image or the pod, on purpose (docs/settings.md says so too).
NOT_FROM_THE_CHART = {
    "AIOPS_KUBECTL": "the image's kubectl is on PATH",
    "KUBECONFIG": "in a pod the operator uses its ServiceAccount",
}


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS[CHART]))
def test_the_chart_passes_every_operator_setting_and_the_operator_accepts_them(
    values_name: str,
) -> None:
    """Each setting of `aiops.settings.OperatorSettings` is in the pod's environment unless
    named above (the key only when a Secret is named), and the values rendered are ones the
    operator starts with, not ones it refuses at start."""
    from aiops.settings import OperatorSettings, env_name

    e = env(render(VALUE_SETS[CHART][values_name]))
    wanted = {env_name(f) for f in OperatorSettings.model_fields.values()}
    optional = {"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"}  # only when the values name them
    optional |= {f"AIOPS_NOTIFY_{k}" for k in ("SECRET", "SECRET_KEY", "FORMAT", "TIMEOUT")}
    optional.add("AIOPS_NOTIFY_RETRY_MAX")
    assert wanted - set(e) - optional == set(NOT_FROM_THE_CHART)
    assert set(e) - wanted == {"HOME"}  # kubectl's discovery cache; nothing unknown
    plain = {k: v["value"] for k, v in e.items() if "value" in v}
    plain["AIOPS_OPERATOR_NAMESPACE"] = NAMESPACE  # from the downward API in the pod
    settings = OperatorSettings.from_env(plain)
    assert str(settings.audit_dir) == plain["AIOPS_AUDIT_DIR"]


def test_the_agent_refusal_limits_come_from_values() -> None:
    e = env(render())
    assert (
        e["AIOPS_AGENT_MAX_REFUSED_PER_TURN"]["value"],
        e["AIOPS_AGENT_MAX_REFUSED_PER_SESSION"]["value"],
    ) == ("8", "12")
    e = env(render({"settings": {"agentMaxRefusedPerTurn": 3, "agentMaxRefusedPerSession": 9}}))
    assert (
        e["AIOPS_AGENT_MAX_REFUSED_PER_TURN"]["value"],
        e["AIOPS_AGENT_MAX_REFUSED_PER_SESSION"]["value"],
    ) == ("3", "9")


# --- the audit log --------------------------------------------------------------------------


def audit_volume(r: Rendered) -> dict[str, Any]:
    pod = r.one("Deployment", "aiops-operator", NAMESPACE)["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "audit"]
    return vol


def test_audit_pvc_is_there_iff_enabled_and_mounted_where_the_operator_writes() -> None:
    r = render(
        {
            "audit": {
                "persistence": {"enabled": True, "storageClassName": "fast", "size": "5Gi"},
                "mountPath": "/audit",
            }
        }
    )
    pvc = r.one("PersistentVolumeClaim", "aiops-operator-audit", NAMESPACE)
    assert pvc["spec"]["storageClassName"] == "fast"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    # The audit log survives `helm uninstall`.
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert audit_volume(r)["persistentVolumeClaim"]["claimName"] == "aiops-operator-audit"
    mounts = {m["name"]: m["mountPath"] for m in container(r)["volumeMounts"]}
    assert mounts["audit"] == env(r)["AIOPS_AUDIT_DIR"]["value"] == "/audit"

    default = render()
    assert (
        "storageClassName"
        not in default.one("PersistentVolumeClaim", "aiops-operator-audit", NAMESPACE)["spec"]
    )

    off = render({"replicas": 1, "audit": {"persistence": {"enabled": False}}})
    assert off.all("PersistentVolumeClaim") == []
    assert audit_volume(off) == {"name": "audit", "emptyDir": {}}

    existing = render({"audit": {"persistence": {"enabled": True, "existingClaim": "mine"}}})
    assert existing.all("PersistentVolumeClaim") == []
    assert audit_volume(existing)["persistentVolumeClaim"]["claimName"] == "mine"


def test_the_replicas_share_the_audit_volume_or_the_chart_refuses() -> None:
    pvc = render().one("PersistentVolumeClaim", "aiops-operator-audit", NAMESPACE)
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    rwo = {"enabled": True, "accessModes": ["ReadWriteOnce"]}  # one node (kind) shares it
    one_node = render({"audit": {"persistence": rwo}})
    pvc = one_node.one("PersistentVolumeClaim", "aiops-operator-audit", NAMESPACE)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    err = template_error(CHART, {"audit": {"persistence": {"enabled": False}}})
    assert "replicas > 1 needs audit.persistence.enabled=true" in err
    err = template_error(CHART, {"peering": {"enabled": False}})
    assert "replicas > 1 needs peering.enabled=true" in err


# --- high availability ----------------------------------------------------------------------


def test_standbys_spread_over_nodes_and_survive_a_drain() -> None:
    r = render({"peering": {"enabled": True, "name": "ops-peers"}})
    assert "--peering=ops-peers" in container(r)["args"]
    pdb = r.one("PodDisruptionBudget", "aiops-operator", NAMESPACE)
    dep = r.one("Deployment", "aiops-operator", NAMESPACE)
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == dep["spec"]["selector"]
    (term,) = dep["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"] == dep["spec"]["selector"]
    # The operator's role lets it make and keep alive its peering object.
    role = r.one("ClusterRole", "aiops-operator")
    (rule,) = [x for x in role["rules"] if x["apiGroups"] == ["kopf.dev"]]
    assert {"kopfpeerings", "clusterkopfpeerings"} == set(rule["resources"])
    assert {"create", "patch", "watch"} <= set(rule["verbs"])
    # An affinity of the user's replaces the default one.
    mine: dict[str, Any] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    custom = render({"affinity": mine}).one("Deployment", "aiops-operator", NAMESPACE)
    assert custom["spec"]["template"]["spec"]["affinity"] == mine


def test_one_standalone_replica_recreates_and_has_no_budget() -> None:
    r = render({"replicas": 1, "peering": {"enabled": False}})
    dep = r.one("Deployment", "aiops-operator", NAMESPACE)
    assert dep["spec"]["replicas"] == 1
    # Recreate: an upgrade stops the old operator before the new one starts (kopf standalone).
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert not [a for a in container(r)["args"] if a.startswith("--peering")]
    assert r.all("PodDisruptionBudget") == []
    assert "affinity" not in dep["spec"]["template"]["spec"]


# --- the switch -----------------------------------------------------------------------------


def test_switch_configmap_and_the_role_that_reads_only_it() -> None:
    r = render()
    assert r.one("ConfigMap", "aiops-switch", NAMESPACE)["data"] == {"actions": "running"}
    stopped = render({"switch": {"actions": "stopped"}})
    assert stopped.one("ConfigMap", "aiops-switch", NAMESPACE)["data"] == {"actions": "stopped"}
    role = r.one("Role", "aiops-operator-switch", NAMESPACE)
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["aiops-switch"],
            "verbs": ["get"],
        }
    ]
    rb = r.one("RoleBinding", "aiops-operator-switch", NAMESPACE)
    assert rb["roleRef"]["name"] == "aiops-operator-switch"
    assert rb in bindings_of_operator(r)
    # The operator's namespace need not be watched: the switch is readable anyway.
    other = render({"watch": {"namespaces": ["team-a"]}})
    assert other.one("RoleBinding", "aiops-operator-switch", NAMESPACE)


# --- the API objects are the generated ones -------------------------------------------------


def repo_objects(pattern: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted(CRDS.glob(pattern)):
        out += [o for o in yaml.safe_load_all(path.read_text()) if o]
    return out


def by_name(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


def test_api_objects_are_exactly_the_generated_files_in_crds() -> None:
    r = render()
    rendered_crds = by_name(r.all("CustomResourceDefinition"))
    # Ours, and kopf's peering CRDs (two replicas, one active).
    repo_crds = by_name(repo_objects("*.dev_*.yaml"))
    assert rendered_crds.keys() == repo_crds.keys() and repo_crds
    for key, crd in rendered_crds.items():
        crd = yaml.safe_load(yaml.safe_dump(crd))
        annotations = crd["metadata"].pop("annotations")
        # Kept on uninstall: deleting a CRD deletes every Subject, Incident and Approval.
        assert annotations == {"helm.sh/resource-policy": "keep"}
        assert crd == repo_crds[key], f"{key} differs from crds/: run `aiops crds`?"
    for pattern, kinds in (
        (
            "approval-admission-policy.yaml",
            ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"),
        ),
        ("rbac/*.yaml", ("ClusterRole",)),
    ):
        repo = by_name(repo_objects(pattern))
        got = by_name(
            [o for k in kinds for o in r.all(k) if (o["kind"], o["metadata"]["name"]) in repo]
        )
        assert got == repo, pattern


def test_crds_install_false_renders_no_cluster_api_objects() -> None:
    r = render({"crds": {"install": False}})
    for kind in (
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ):
        assert r.all(kind) == []
    names = {o["metadata"]["name"] for o in r.all("ClusterRole")}
    assert not names & {"aiops-operator", "aiops-sre", "aiops-viewer"}


def test_chart_reads_the_repositorys_crds_folder_not_a_copy() -> None:
    link = REPO / "charts" / CHART / "files" / "crds"
    assert link.is_symlink() and link.resolve() == CRDS.resolve()


# --- no Secret material ---------------------------------------------------------------------


def test_no_secret_is_ever_rendered_and_the_key_comes_from_a_named_secret() -> None:
    for name, values in VALUE_SETS[CHART].items():
        assert render(values).all("Secret") == [], name
    e = env(render({"anthropic": {"existingSecret": "anthropic-key", "existingSecretKey": "k"}}))
    assert e["ANTHROPIC_API_KEY"] == {
        "name": "ANTHROPIC_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "anthropic-key", "key": "k"}},
    }


def test_an_api_key_in_values_is_refused_and_not_echoed() -> None:
    key = "sk-ant-api03-NOT-A-REAL-KEY"
    err = template_error(CHART, {"anthropic": {"apiKey": key}})
    assert "apiKey" in err and "not allowed" in err
    assert key not in err


# --- separation of duties -------------------------------------------------------------------


def roles_by_ref(r: Rendered) -> dict[tuple[str, str | None, str], list[dict[str, Any]]]:
    """(kind, namespace, name) -> rules, for the rendered roles and the generated ClusterRoles
    (which crds.install=false leaves to be installed another way)."""
    out: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {
        ("ClusterRole", None, o["metadata"]["name"]): o["rules"] for o in repo_objects("rbac/*")
    }
    for o in r.all("ClusterRole"):
        out[("ClusterRole", None, o["metadata"]["name"])] = o["rules"]
    for o in r.all("Role"):
        out[("Role", o["metadata"].get("namespace", NAMESPACE), o["metadata"]["name"])] = o["rules"]
    return out


def covers_operator(subject: dict[str, Any]) -> bool:
    if subject["kind"] == "ServiceAccount":
        return bool(subject["name"] == SA and subject.get("namespace", NAMESPACE) == NAMESPACE)
    if subject["kind"] == "User":
        return bool(subject["name"] == SA_USER)
    return subject["name"] in {
        "system:serviceaccounts",
        f"system:serviceaccounts:{NAMESPACE}",
        "system:authenticated",
    }


def writes_approvals(rule: dict[str, Any]) -> bool:
    return (
        bool({"aiops.dev", "*"} & set(rule.get("apiGroups", [])))
        and bool({"approvals", "*"} & set(rule.get("resources", [])))
        and bool(WRITE_VERBS & set(rule.get("verbs", [])))
    )


@pytest.mark.parametrize("values_name", list(VALUE_SETS[CHART]))
def test_operator_service_account_can_never_create_approvals(values_name: str) -> None:
    r = render(VALUE_SETS[CHART][values_name])
    roles = roles_by_ref(r)
    granted = 0
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for b in r.all(kind):
            if not any(covers_operator(s) for s in b.get("subjects", [])):
                continue
            ref = b["roleRef"]
            ns = b["metadata"].get("namespace", NAMESPACE) if ref["kind"] == "Role" else None
            rules = roles[(ref["kind"], ns, ref["name"])]
            granted += 1
            assert not [rule for rule in rules if writes_approvals(rule)], (
                f"{kind} {b['metadata']['name']} lets the operator write Approvals"
            )
    assert granted >= 2  # its role and the switch's, at least: the check looked at something


def test_sre_bindings_go_where_the_operator_watches() -> None:
    r = render(
        {
            "watch": {"namespaces": ["team-a", "team-b"]},
            "rbac": {"sre": {"users": ["alice"], "groups": ["sre"]}},
        }
    )
    sre = [b for b in r.all("RoleBinding") if b["roleRef"]["name"] == "aiops-sre"]
    assert sorted(b["metadata"]["namespace"] for b in sre) == ["team-a", "team-b"]
    assert {s["name"] for s in sre[0]["subjects"]} == {"alice", "sre"}
    cluster = render({"watch": {"mode": "cluster"}, "rbac": {"sre": {"users": ["alice"]}}})
    (crb,) = [b for b in cluster.all("ClusterRoleBinding") if b["roleRef"]["name"] == "aiops-sre"]
    assert crb["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}
    ]
    assert [b for b in render().all("RoleBinding") if b["roleRef"]["name"] == "aiops-sre"] == []


@pytest.mark.parametrize(
    "sre",
    [
        {"users": [SA_USER]},
        {"groups": ["system:serviceaccounts"]},
        {"groups": [f"system:serviceaccounts:{NAMESPACE}"]},
        {"groups": ["system:authenticated"]},
    ],
    ids=["sa-user", "all-sas", "namespace-sas", "authenticated"],
)
def test_sre_role_covering_the_operator_is_refused(sre: dict[str, list[str]]) -> None:
    err = template_error(CHART, {"rbac": {"sre": sre}})
    assert "would let the operator approve its own actions" in err


# --- the schema -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"watch": {"mode": "everywhere"}}, ["watch/mode", "namespaced", "cluster"]),
        ({"watch": {"namespaces": ["Team_A"]}}, ["watch/namespaces/0"]),
        ({"audit": {"persistance": {"enabled": True}}}, ["persistance", "not allowed"]),
        ({"audit": {"persistence": {"enabled": True, "size": "lots"}}}, ["audit/persistence/size"]),
        ({"switch": {"actions": "paused"}}, ["switch/actions", "running", "stopped"]),
        ({"prometheus": {"enabled": "yes"}}, ["prometheus/enabled", "boolean"]),
        ({"replicas": 0}, ["replicas"]),
        ({"settings": {"chaosMaxDuration": "an hour"}}, ["settings/chaosMaxDuration"]),
        ({"settings": {"agentMaxRefusedPerTurn": 0}}, ["settings/agentMaxRefusedPerTurn"]),
        ({"settings": {"verifyTimeoutSeconds": 7200}}, ["settings/verifyTimeoutSeconds"]),
    ],
    ids=[
        "mode",
        "namespace-name",
        "misspelt-key",
        "size",
        "switch",
        "bool",
        "replicas",
        "chaos-duration",
        "refusal-limit",
        "verify-timeout",
    ],
)
def test_schema_refuses_bad_values_saying_where(values: dict[str, Any], says: list[str]) -> None:
    err = template_error(CHART, values)
    assert "values don't meet the specifications of the schema" in err, err
    for word in says:
        assert word in err, f"{word!r} not in:\n{err}"


# --- the demo Prometheus --------------------------------------------------------------------


def prometheus_config(r: Rendered) -> dict[str, Any]:
    cm = r.one("ConfigMap", "aiops-prometheus", NAMESPACE)
    config: dict[str, Any] = yaml.safe_load(cm["data"]["prometheus.yml"])
    return config


def test_demo_prometheus_is_off_by_default_and_follows_the_watch_mode() -> None:
    assert [o for o in render() if "prometheus" in o["metadata"]["name"]] == []
    r = render({"prometheus": {"enabled": True}, "watch": {"namespaces": ["tikv", "rl"]}})
    assert r.one("Service", "aiops-prometheus", NAMESPACE)["spec"]["ports"][0]["port"] == 9090
    (sd,) = prometheus_config(r)["scrape_configs"][0]["kubernetes_sd_configs"]
    assert sd == {"role": "pod", "namespaces": {"names": ["tikv", "rl"]}}
    bound = sorted(
        b["metadata"]["namespace"]
        for b in r.all("RoleBinding")
        if b["roleRef"]["name"] == f"aiops-prometheus-{NAMESPACE}"
    )
    assert bound == ["rl", "tikv"]
    c = render({"prometheus": {"enabled": True}, "watch": {"mode": "cluster"}})
    (sd,) = prometheus_config(c)["scrape_configs"][0]["kubernetes_sd_configs"]
    assert sd == {"role": "pod"}
    assert c.one("ClusterRoleBinding", f"aiops-prometheus-{NAMESPACE}")


def test_paths_in_the_chart_are_relative() -> None:
    """A chart is shipped: nothing in it may name this machine."""
    chart = REPO / "charts" / CHART
    for path in chart.rglob("*"):
        if path.is_file() and not path.is_symlink() and "files" not in path.parts:
            text = path.read_text()
            assert str(Path.home()) not in text and "/work/" not in text, path


# --- metrics --------------------------------------------------------------------------------

DASHBOARD = REPO / "charts" / CHART / "files" / "dashboards" / "aiops-operator.json"


def test_metrics_are_served_on_every_interface_of_the_pod_behind_a_service() -> None:
    r = render()
    c = container(r)
    e = env(r)
    assert (e["AIOPS_METRICS_PORT"]["value"], e["AIOPS_METRICS_ADDRESS"]["value"]) == (
        "9102",
        "0.0.0.0",
    )
    assert {"name": "metrics", "containerPort": 9102} in c["ports"]
    svc = r.one("Service", "aiops-operator-metrics", NAMESPACE)
    assert svc["spec"]["ports"] == [
        {"name": "metrics", "port": 9102, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod = r.one("Deployment", "aiops-operator", NAMESPACE)["spec"]["template"]
    # The Service selects the operator's pods and nothing else the release runs.
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9102",
        "prometheus.io/path": "/metrics",
    }
    # Off by default: no ServiceMonitor (its CRD may not exist), no dashboard ConfigMap.
    assert r.all("ServiceMonitor") == []
    assert r.get("ConfigMap", "aiops-operator-dashboard", NAMESPACE) is None


def test_metrics_off_renders_no_port_service_or_annotation() -> None:
    r = render({"metrics": {"enabled": False}, "podAnnotations": {"team": "sre"}})
    c = container(r)
    assert "AIOPS_METRICS_PORT" not in env(r)
    assert all(p["name"] != "metrics" for p in c["ports"])
    assert r.get("Service", "aiops-operator-metrics", NAMESPACE) is None
    pod = r.one("Deployment", "aiops-operator", NAMESPACE)["spec"]["template"]
    assert pod["metadata"]["annotations"] == {"team": "sre"}


def test_service_monitor_scrapes_the_metrics_service() -> None:
    values = {
        "metrics": {
            "port": 9300,
            "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kps"}},
        }
    }
    r = render(values)
    (sm,) = r.all("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kps"
    svc = r.one("Service", "aiops-operator-metrics", NAMESPACE)
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert sm["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert svc["spec"]["ports"][0]["port"] == 9300
    assert env(r)["AIOPS_METRICS_PORT"]["value"] == "9300"


def test_dashboard_configmap_holds_the_dashboard_file_for_the_grafana_sidecar() -> None:
    r = render({"metrics": {"dashboard": {"enabled": True}}})
    cm = r.one("ConfigMap", "aiops-operator-dashboard", NAMESPACE)
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["aiops-operator.json"]) == json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"metrics": {"port": 80}}, ["metrics", "port"]),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, ["interval"]),
        ({"metrics": {"scrape": True}}, ["scrape"]),
    ],
)
def test_schema_refuses_bad_metrics_values(values: dict[str, Any], says: list[str]) -> None:
    err = template_error(CHART, values)
    for word in says:
        assert word in err, err
