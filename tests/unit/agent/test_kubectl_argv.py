"""What the model may ask of kubectl, decided from the argument vector."""

from __future__ import annotations

import pytest

from aiops.agent.kubectl_argv import KubectlRefused, mutation_problems, read_command


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["get", "pods", "-o", "wide"], ["get", "--namespace=shop", "pods", "-o", "wide"]),
        (["get", "deploy/web", "-n", "shop"], ["get", "--namespace=shop", "deploy/web"]),
        (["describe", "sts", "tikv"], ["describe", "--namespace=shop", "sts", "tikv"]),
        (["logs", "web-0", "-c", "app"],
         ["logs", "--namespace=shop", "web-0", "-c", "app", "--tail=200"]),
        (["logs", "web-0", "--tail=50", "--previous"],
         ["logs", "--namespace=shop", "web-0", "--tail", "50", "--previous"]),
        (["get", "pods,services", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"],
         ["get", "--namespace=shop", "pods,services", "-l", "app=web", "-o",
          "jsonpath={.items[*].metadata.name}"]),
        (["top", "pods"], ["top", "--namespace=shop", "pods"]),
        (["version", "--client"], ["version", "--namespace=shop", "--client"]),
    ],
)  # fmt: skip
def test_reads_run_with_the_namespace_forced(argv: list[str], expected: list[str]) -> None:
    assert read_command(argv, "shop").argv == expected


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ("get pods", "never one string"),
        ([], "non-empty list"),
        (["-n", "shop", "get", "pods"], "verb first"),
        (["delete", "pods", "--all"], 'action "kubectl"'),
        (["scale", "sts/web", "--replicas=0"], "not a read"),
        (["exec", "web-0", "--", "sh"], "not a read"),
        (["get", "pods", "-A"], "-A is not allowed"),
        (["get", "pods", "--all-namespaces"], "--all-namespaces is not allowed"),
        (["get", "pods", "--kubeconfig=/etc/kubernetes/admin.conf"], "--kubeconfig"),
        (["get", "pods", "--as", "system:admin"], "--as is not allowed"),
        (["get", "pods", "--token", "abc"], "--token is not allowed"),
        (["get", "pods", "-s", "https://elsewhere"], "-s is not allowed"),
        (["get", "--raw", "/api/v1/namespaces/kube-system/secrets"], "--raw is not allowed"),
        (["get", "-f", "/etc/passwd"], "-f is not allowed"),
        (["get", "pods", "-n", "kube-system"], "not 'kube-system'"),
        (["get", "pods", "--namespace=kube-system"], "not 'kube-system'"),
        (["get", "secrets"], "Secrets are never read"),
        (["get", "pods,secret"], "Secrets are never read"),
        (["describe", "secret/db-password"], "Secrets are never read"),
        (["get", "secrets.v1.", "-o", "yaml"], "Secrets are never read"),
        (["get", "nodes"], "kind 'nodes' cannot be read"),
        (["get", "clusterroles"], "cannot be read"),
        (["top", "nodes"], "cannot be read"),
        (["get", "pods", "-w"], "flag -w is not allowed"),
        (["logs", "web-0", "-f"], "-f is not allowed"),
        (["get", "pods", "-o", "go-template-file=/etc/shadow"], "output format"),
        (["get", "pods", "-Ao", "name"], "write short flags separately"),
        (["get", "pods", "-owide"], "write short flags separately"),
        (["get", "pods", "--", "-A"], "'--' is not allowed"),
        (["logs", "web-0", "--tail", "99999"], "--tail must be"),
        (["version", "extra"], "takes no arguments"),
    ],
)  # fmt: skip
def test_everything_else_is_refused_with_the_reason(argv: object, says: str) -> None:
    with pytest.raises(KubectlRefused) as err:
        read_command(argv, "shop")
    assert says in str(err.value)


def test_shell_syntax_is_just_characters() -> None:
    # No shell: these reach kubectl as one literal argument each, and the kind is checked.
    assert read_command(["logs", "web-0;reboot"], "shop").argv[2] == "web-0;reboot"
    with pytest.raises(KubectlRefused, match="cannot be read"):
        read_command(["get", "pods;rm -rf /"], "shop")


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["delete", "pods", "--all"], "--all would act on many objects"),
        (["delete", "pods", "-l", "app=web"], "-l would act on many objects"),
        (["delete", "all", "--selector=app"], "'all' would act on many objects"),
        (["delete", "secret", "db"], "Secrets are never touched"),
        (["delete", "--wait", "secrets"], "Secrets are never touched"),
        (["delete", "pod", "web-0", "-n", "kube-system"], "-n is not allowed"),
        (["delete", "pod", "web-0", "--kubeconfig=/x"], "--kubeconfig is not allowed"),
        (["apply", "-f", "/tmp/x.yaml"], "-f is not allowed"),
        (["get", "pods"], "is a read"),
        (["exec", "web-0", "sh"], "never allowed"),
        ("delete pod web-0", "never one string"),
    ],
)  # fmt: skip
def test_mutations_that_must_not_be_proposed(argv: object, problem: str) -> None:
    assert any(problem in p for p in mutation_problems(argv)), mutation_problems(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["delete", "pod", "web-0"],
        ["rollout", "restart", "statefulset/tikv"],
        ["scale", "deployment/web", "--replicas=3"],
        ["annotate", "pod", "web-0", "aiops.dev/checked=true"],
    ],
)
def test_single_object_mutations_may_be_proposed(argv: list[str]) -> None:
    assert mutation_problems(argv) == []
