"""What the model may ask of kubectl, decided from the argument vector: reads for the tool,
and the allowlisted changes of the core action `kubectl`, rewritten into one unambiguous form
with the server-side dry run right after the verb."""

from __future__ import annotations

import pytest

from aiops.actions.kubectl.argv import (
    _VERBS,
    KubectlRefused,
    mutation_command,
    mutation_problems,
    read_command,
)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["get", "pods", "-o", "wide"], ["get", "--namespace=shop", "pods", "-o", "wide"]),
        (["get", "deploy/web", "-n", "shop"], ["get", "--namespace=shop", "deploy/web"]),
        (["describe", "sts", "tikv"], ["describe", "--namespace=shop", "sts", "tikv"]),
        (
            ["logs", "web-0", "-c", "app"],
            ["logs", "--namespace=shop", "web-0", "-c", "app", "--tail=200"],
        ),
        (
            ["logs", "web-0", "--tail=50", "--previous"],
            ["logs", "--namespace=shop", "web-0", "--tail", "50", "--previous"],
        ),
        (
            ["get", "pods,services", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"],
            [
                "get",
                "--namespace=shop",
                "pods,services",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
        ),
        (["top", "pods"], ["top", "--namespace=shop", "pods"]),
        (["version", "--client"], ["version", "--namespace=shop", "--client"]),
    ],
)
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
)
def test_everything_else_is_refused_with_the_reason(argv: object, says: str) -> None:
    with pytest.raises(KubectlRefused) as err:
        read_command(argv, "shop")
    assert says in str(err.value)


def test_shell_syntax_is_just_characters() -> None:
    # No shell: these reach kubectl as one literal argument each, and the kind is checked.
    assert read_command(["logs", "web-0;reboot"], "shop").argv[2] == "web-0;reboot"
    with pytest.raises(KubectlRefused, match="cannot be read"):
        read_command(["get", "pods;rm -rf /"], "shop")


# -- mutations: the core action `kubectl` -------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        # many objects at once
        (["delete", "pods", "--all"], "--all would act on many objects"),
        (["delete", "pods", "-l", "app=web"], "-l would act on many objects"),
        (["annotate", "pods", "--selector=app=web", "a=b"], "--selector would act on many"),
        (["delete", "all", "--selector=app"], "'all' would act on many objects"),
        (["delete", "configmap", "a", "b"], "one object per step"),
        (["delete", "pods,configmaps", "a"], "one kind and one object per step"),
        (["delete", "pods"], "changes one object, named as KIND NAME"),
        (["rollout", "undo", "deployment"], "changes one object, named as KIND NAME"),
        # Secrets, the aiops.dev API, cluster-scoped and other kinds outside the allowlist
        (["delete", "secret", "db"], "Secrets are never touched"),
        (["delete", "--wait", "secrets"], "Secrets are never touched"),
        (["patch", "secrets.v1./db", "-p", "{}"], "Secrets are never touched"),
        (["annotate", "subjects", "rl", "a=b"], "the aiops.dev API"),
        (["annotate", "Subject/rl", "a=b"], "the aiops.dev API"),
        (["patch", "incidents.aiops.dev", "i-1", "-p", "{}"], "the aiops.dev API"),
        (["patch", "incidents.v1alpha1.aiops.dev/i-1", "-p", "{}"], "the aiops.dev API"),
        (["delete", "approval", "a-1"], "the aiops.dev API"),
        (["label", "appr/a-1", "x=y"], "the aiops.dev API"),
        (["annotate", "chaos/c-1", "a=b"], "the aiops.dev API"),
        (["annotate", "x.aiops.dev/y", "a=b"], "the aiops.dev API"),
        (["annotate", "aiops", "y", "a=b"], "the aiops.dev API"),
        (["annotate", "nodes", "n1", "a=b"], "kind 'nodes' cannot be changed"),
        (["label", "namespace/shop", "a=b"], "cannot be changed"),
        (["patch", "clusterrolebinding/x", "-p", "{}"], "cannot be changed"),
        (["annotate", "serviceaccounts/default", "a=b"], "cannot be changed"),
        (["patch", "rolebindings/x", "-p", "{}"], "cannot be changed"),
        (["patch", "deployments.extensions/web", "-p", "{}"], "cannot be changed"),
        (["patch", "pods.v2./web-0", "-p", "{}"], "cannot be changed"),
        (["delete", "deployment", "web"], "kubectl delete cannot change deployments"),
        (["delete", "pvc", "data-0"], "kubectl delete cannot change persistentvolumeclaims"),
        (["scale", "daemonset/agent", "--replicas=2"], "cannot change daemonsets"),
        # verbs outside the allowlist
        (["create", "token", "default"], "kubectl create is never allowed"),
        (["create", "rolebinding", "x", "--clusterrole=admin", "--user=me"], "never allowed"),
        (["create", "clusterrolebinding", "x"], "kubectl create is never allowed"),
        (["apply", "-f", "/tmp/x.yaml"], "kubectl apply is not an allowed change"),
        (["replace", "--force", "-f", "x.yaml"], "kubectl replace is not an allowed change"),
        (["edit", "deployment/web"], "kubectl edit is not an allowed change"),
        (["set", "env", "deployment/web", "--from=secret/db"], "kubectl set env is not allowed"),
        (["set", "serviceaccount", "deployment/web", "admin"], "set serviceaccount is not"),
        (["rollout", "status", "deployment/web"], "kubectl rollout status is not allowed"),
        # kubectl has no --dry-run for these: they could never pass the server's dry run
        (
            ["rollout", "restart", "statefulset/tikv"],
            "has no server-side dry run, so it cannot "
            "be proposed; propose the same change as a patch: patch deployment/NAME",
        ),
        (["rollout", "pause", "deployment/web"], '\'{"spec":{"paused":true}}\''),
        (["rollout", "resume", "deployment/web"], '\'{"spec":{"paused":false}}\''),
        (["rollout"], "kubectl rollout is not allowed"),
        (["get", "pods"], "is a read"),
        (["exec", "web-0", "sh"], "never allowed"),
        (["drain", "node-1"], "never allowed"),
        (["my-plugin", "pod", "x"], "kubectl my-plugin is not an allowed change"),
        # flags: identity, namespace, local files, verbosity, output, the dry run itself
        (["delete", "pod", "web-0", "-n", "kube-system"], "-n is not allowed"),
        (["delete", "pod", "web-0", "--namespace=kube-system"], "--namespace is not allowed"),
        (["delete", "pod", "web-0", "--kubeconfig=/x"], "--kubeconfig is not allowed"),
        (["delete", "pod", "web-0", "--as=system:admin"], "--as is not allowed"),
        (["annotate", "-f", "/tmp/x.yaml", "a=b"], "-f is not allowed"),
        (["patch", "pod/web-0", "--patch-file=/etc/passwd"], "--patch-file is not allowed"),
        (["annotate", "pod/web-0", "a=b", "--profile=cpu"], "--profile is not allowed"),
        (["annotate", "pod/web-0", "a=b", "--profile-output=/var/x"], "--profile-output is not"),
        (["annotate", "pod/web-0", "a=b", "--log-file=/var/x"], "--log-file is not allowed"),
        (["annotate", "pod/web-0", "a=b", "--cache-dir=/var/x"], "--cache-dir is not allowed"),
        (["annotate", "pod/web-0", "a=b", "-v", "9"], "-v is not allowed: verbose"),
        (["annotate", "pod/web-0", "a=b", "--v=9"], "--v is not allowed: verbose"),
        (
            ["annotate", "pod/web-0", "a=b", "-o", "yaml"],
            "flag -o is not allowed for kubectl "
            "annotate (allowed: --overwrite, --resource-version)",
        ),
        (["annotate", "pod/web-0", "a=b", "--template={{.}}"], "--template is not allowed"),
        (["annotate", "pod/web-0", "a=b", "--field-manager=x"], "--field-manager is not allowed"),
        (["patch", "pod/web-0", "-p", "{}", "--subresource=status"], "--subresource is not"),
        (["patch", "pod/web-0", "-p", "{}", "--local"], "--local is not allowed"),
        (["annotate", "pod/web-0", "a=b", "--dry-run=none"], "the operator runs the server-side"),
        (["delete", "pod", "web-0", "--force"], "--force is not allowed for kubectl delete"),
        (["delete", "pod", "web-0", "--grace-period=0"], "from 1 to 3600"),
        (["delete", "job", "j", "--cascade=orphan"], "takes background or foreground"),
        (["scale", "sts/web", "--replicas=-1"], "--replicas takes a whole number"),
        (["scale", "sts/web", "--replicas=100000"], "--replicas takes a whole number"),
        (["scale", "sts/web"], "kubectl scale needs --replicas"),
        (["patch", "deploy/web"], "kubectl patch needs --patch"),
        (["patch", "deploy/web", "-p", "spec: {}"], "takes a JSON patch"),
        (["patch", "deploy/web", "-p", "{}", "--type=apply"], "takes strategic or merge or json"),
        (["patch", "deploy/web", "-p{}"], "write short flags separately"),
        (["annotate", "pod/web-0", "a=b", "--overwrite=yes"], "takes true or false"),
        (["annotate", "pod/web-0", "a=b", "--overwrite", "--overwrite"], "given twice"),
        (["annotate", "pod/web-0", "a=b", "--", "--dry-run=none"], "'--' is not allowed"),
        # a flag whose value is missing: last, or followed by another flag
        (
            ["annotate", "pod/web-0", "a=b", "--resource-version"],
            "--resource-version needs a value: write --resource-version=VALUE",
        ),
        (["label", "pod/web-0", "a=b", "--resource-version", "--overwrite"], "needs a value"),
        (["scale", "deploy/web", "--replicas"], "--replicas needs a value"),
        (["patch", "deploy/web", "-p"], "-p needs a value"),
        (["set", "resources", "deploy/web", "--limits"], "--limits needs a value"),
        (["rollout", "undo", "deploy/web", "--to-revision"], "--to-revision needs a value"),
        # what follows the object
        (["annotate", "pod/web-0"], "needs at least one KEY=VALUE"),
        (["annotate", "pod/web-0", "not a key=x"], "must be KEY=VALUE or KEY-"),
        (["label", "pod", "web-0", "pods/other"], "must be KEY=VALUE or KEY-"),
        (["set", "image", "deploy/web"], "needs at least one CONTAINER=IMAGE"),
        (["set", "image", "deploy/web", "app=bad image"], "must be CONTAINER=IMAGE"),
        (["set", "resources", "deploy/web", "-c", "app"], "needs --limits or --requests"),
        (["set", "resources", "deploy/web", "--limits=cpu"], "--limits takes RESOURCE=QUANTITY"),
        ("delete pod web-0", "never one string"),
        (["delete", "pod/web\x00"], "must not contain NUL"),
        (["delete", "pod/Web_0"], "'Web_0' is not an object name"),
    ],
)
def test_mutations_that_must_not_be_proposed(argv: object, problem: str) -> None:
    problems = mutation_problems(argv)
    assert any(problem in p for p in problems), problems
    with pytest.raises(KubectlRefused):
        mutation_command(argv)


def test_every_problem_is_reported_at_once() -> None:
    problems = mutation_problems(["delete", "pods", "--all", "-A", "--kubeconfig=/x"])
    assert len(problems) == 3, problems


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["annotate", "configmap", "plan-target", "aiops.dev/drained=true"],
            [
                "annotate",
                "--dry-run=server",
                "configmaps.v1./plan-target",
                "aiops.dev/drained=true",
            ],
        ),
        (
            ["annotate", "cm/x", "a=b", "old-", "--overwrite"],
            ["annotate", "--dry-run=server", "configmaps.v1./x", "a=b", "old-", "--overwrite=true"],
        ),
        (
            ["label", "--overwrite=false", "Pod", "web-0", "tier=canary"],
            ["label", "--dry-run=server", "pods.v1./web-0", "tier=canary", "--overwrite=false"],
        ),
        (["delete", "pod", "web-0"], ["delete", "--dry-run=server", "pods.v1./web-0"]),
        (
            ["delete", "configmaps.v1./old", "--wait=false", "--grace-period", "5"],
            [
                "delete",
                "--dry-run=server",
                "configmaps.v1./old",
                "--grace-period=5",
                "--wait=false",
            ],
        ),
        (
            [
                "patch",
                "statefulset/tikv",
                "-p",
                '{"spec":{"template":{"metadata":{"annotations":'
                '{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}',
            ],
            [
                "patch",
                "--dry-run=server",
                "statefulsets.v1.apps/tikv",
                '--patch={"spec":{"template":{"metadata":{"annotations":'
                '{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}',
            ],
        ),
        (
            ["rollout", "undo", "deploy", "web", "--to-revision=3"],
            ["rollout", "undo", "--dry-run=server", "deployments.v1.apps/web", "--to-revision=3"],
        ),
        (
            ["scale", "deployments.apps/web", "--replicas", "3"],
            ["scale", "--dry-run=server", "deployments.v1.apps/web", "--replicas=3"],
        ),
        (
            ["patch", "hpa", "web", "--type", "merge", "-p", '{"spec":{"maxReplicas":9}}'],
            [
                "patch",
                "--dry-run=server",
                "horizontalpodautoscalers.v2.autoscaling/web",
                '--patch={"spec":{"maxReplicas":9}}',
                "--type=merge",
            ],
        ),
        (
            ["set", "image", "ds/agent", "agent=registry.example/agent:1.2@sha256:ab"],
            [
                "set",
                "image",
                "--dry-run=server",
                "daemonsets.v1.apps/agent",
                "agent=registry.example/agent:1.2@sha256:ab",
            ],
        ),
        (
            ["set", "resources", "sts/db", "-c=db", "--limits=cpu=2,memory=4Gi"],
            [
                "set",
                "resources",
                "--dry-run=server",
                "statefulsets.v1.apps/db",
                "--containers=db",
                "--limits=cpu=2,memory=4Gi",
            ],
        ),
    ],
)
def test_allowed_changes_are_rewritten_with_the_dry_run_after_the_verb(
    argv: list[str], expected: list[str]
) -> None:
    assert mutation_problems(argv) == []
    command = mutation_command(argv)
    assert command.argv(dry_run=True) == expected
    assert command.argv(dry_run=False) == [a for a in expected if a != "--dry-run=server"]


def test_every_value_flag_left_without_its_value_is_refused() -> None:
    """The class of the reviewer's exploit (`annotate ... --field-manager` last, which took
    the appended `--dry-run=server` as its value): for every verb, every flag that takes a
    value, left last or followed by another flag, is refused."""
    objects = {"keys": ["a=b"], "images": ["app=img:1"], "none": []}
    checked = 0
    for verb in _VERBS.values():
        base = [*verb.words, f"{verb.kinds[0]}/x", *objects[verb.pairs]]
        for flag in verb.flags:
            if flag.check is None:
                continue
            for name in filter(None, (flag.name, flag.short)):
                for argv in ([*base, name], [*base, name, "--dry-run=none"]):
                    assert any("needs a value" in p for p in mutation_problems(argv)), argv
                    checked += 1
    assert checked >= 20


def test_what_runs_has_no_flag_that_could_take_a_value_from_the_next_argument() -> None:
    """Every allowed verb's rewritten form: the dry run right after the verb, every flag as
    `--flag=value`, nothing after the verb that starts with a single dash."""
    objects = {"keys": ["a=b"], "images": ["app=img:1"], "none": []}
    values = {
        "--patch": "{}",
        "--type": "merge",
        "--limits": "cpu=1",
        "--requests": "cpu=1",
        "--containers": "app",
        "--cascade": "foreground",
        "--resource-version": "7",
    }
    for verb in _VERBS.values():
        argv = [*verb.words, f"{verb.kinds[0]}/x", *objects[verb.pairs]]
        for flag in verb.flags:
            argv += [flag.name] if flag.check is None else [flag.name, values.get(flag.name, "1")]
        ran = mutation_command(argv).argv(dry_run=True)
        assert ran[len(verb.words)] == "--dry-run=server", ran
        flags = [a for a in ran[len(verb.words) :] if a.startswith("-")]
        assert all(a.startswith("--") and "=" in a for a in flags), ran
        assert len(flags) == len(verb.flags) + 1


@pytest.mark.parametrize(
    "argv",
    [
        ["delete", "pod", "web-0"],
        ["rollout", "undo", "statefulset/tikv"],
        ["scale", "deployment/web", "--replicas=3"],
        ["annotate", "pod", "web-0", "aiops.dev/checked=true"],
    ],
)
def test_single_object_mutations_may_be_proposed(argv: list[str]) -> None:
    assert mutation_problems(argv) == []
