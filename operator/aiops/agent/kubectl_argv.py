"""What a model may ask of kubectl, decided from the argument vector alone (no shell is ever
involved, so `;`, `|` or `$(...)` are just characters in an argument).

- `read_command(argv, namespace)`: a read (get, describe, logs, ...) the kubectl tool may run,
  rewritten with `--namespace` forced; anything else raises `KubectlRefused`. Flags are
  allowlisted, not blocklisted: a flag we do not know (`--raw`, `--kubeconfig`, `-f`,
  `-o go-template-file=...`) could read outside the namespace or from the operator's disk.
- `mutation_problems(argv)`: why a mutating command proposed as action `kubectl` must not even
  reach the policy gate: commands that name many objects at once (`--all`, selectors, `all`),
  touch Secrets, read local files, or leave the namespace. The gate checks it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiops.policy.core_actions import READ_VERBS

MAX_ARGS = 64
MAX_ARG_LEN = 1024
DEFAULT_LOG_TAIL = 200
MAX_LOG_TAIL = 2000

# Kinds a read may name, each with its aliases: the namespaced kinds a diagnosis needs. Secrets
# are absent on purpose, and so are cluster-scoped kinds (nodes, namespaces, RBAC cluster
# roles): the tool is confined to the Subject's namespace.
_KINDS: dict[str, tuple[str, ...]] = {
    "pods": ("pod", "po"),
    "deployments": ("deployment", "deploy"),
    "statefulsets": ("statefulset", "sts"),
    "daemonsets": ("daemonset", "ds"),
    "replicasets": ("replicaset", "rs"),
    "services": ("service", "svc"),
    "endpoints": ("ep",),
    "endpointslices": ("endpointslice",),
    "events": ("event", "ev"),
    "configmaps": ("configmap", "cm"),
    "persistentvolumeclaims": ("persistentvolumeclaim", "pvc"),
    "jobs": ("job",),
    "cronjobs": ("cronjob", "cj"),
    "poddisruptionbudgets": ("poddisruptionbudget", "pdb"),
    "horizontalpodautoscalers": ("horizontalpodautoscaler", "hpa"),
    "leases": ("lease",),
    "subjects": ("subject", "subj"),
    "incidents": ("incident",),
    "all": (),
}
KIND_ALIASES = {alias: kind for kind, aliases in _KINDS.items() for alias in (kind, *aliases)}
SECRET_KINDS = frozenset({"secret", "secrets"})

# Flags a read may use. Those taking a value, then the boolean ones (which may be `--x=false`).
_VALUE_FLAGS = frozenset({
    "-o", "--output", "-l", "--selector", "--field-selector", "--sort-by", "-L",
    "--label-columns", "--tail", "-c", "--container", "--since", "--since-time",
    "--limit-bytes", "--api-version", "--chunk-size", "--template", "--request-timeout",
    "--max-log-requests", "--api-group", "--verbs", "--subresource", "-n", "--namespace",
})  # fmt: skip
_BOOL_FLAGS = frozenset({
    "--show-labels", "--no-headers", "--all-containers", "-p", "--previous", "--timestamps",
    "--prefix", "--recursive", "--show-kind", "--ignore-not-found", "--show-events",
    "--containers", "--namespaced", "--client", "--show-managed-fields", "--sort",
})  # fmt: skip
_OUTPUT_FORMATS = ("json", "yaml", "wide", "name")
_OUTPUT_TEMPLATES = ("jsonpath=", "jsonpath-as-json=", "custom-columns=", "go-template=")
_NO_POSITIONALS = frozenset({"api-resources", "api-versions", "version"})

# Flags that leave the namespace, change identity or credentials, or read local files.
_ESCAPE_FLAGS = frozenset({
    "-A", "--all-namespaces", "--kubeconfig", "--context", "--cluster", "--user", "--as",
    "--as-group", "--as-uid", "--token", "--server", "-s", "--insecure-skip-tls-verify",
    "--certificate-authority", "--client-key", "--client-certificate", "--username",
    "--password", "--raw", "-f", "--filename", "-k", "--kustomize", "--kuberc",
    "--cache-dir", "--log-file", "--log-dir",
})  # fmt: skip
# Flags that let one mutating command reach many objects at once.
_MASS_FLAGS = frozenset({"--all", "-l", "--selector", "--field-selector"})
_NEVER_VERBS = frozenset(
    {"exec", "attach", "port-forward", "proxy", "cp", "debug", "run", "auth", "config",
     "plugin", "alpha", "certificate", "drain", "cordon", "uncordon", "taint"}
)  # fmt: skip


class KubectlRefused(ValueError):
    """The command is not allowed; the message says why, for the model."""


@dataclass(frozen=True)
class ReadCommand:
    verb: str
    argv: list[str]  # what to pass kubectl, namespace included


def _check_vector(argv: object) -> list[str]:
    if isinstance(argv, str):
        raise KubectlRefused(
            "argv must be a list of arguments, e.g. [\"get\", \"pods\"], never one string: "
            "no shell is involved"
        )
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise KubectlRefused("argv must be a non-empty list of strings")
    if len(argv) > MAX_ARGS or any(len(a) > MAX_ARG_LEN for a in argv):
        raise KubectlRefused(f"argv is limited to {MAX_ARGS} arguments of {MAX_ARG_LEN} chars")
    if any("\x00" in a for a in argv):
        raise KubectlRefused("arguments must not contain NUL characters")
    if argv[0].startswith("-"):
        raise KubectlRefused("put the verb first, e.g. [\"get\", \"pods\", \"-o\", \"wide\"]")
    return list(argv)


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def _kind_of(token: str) -> str:
    """`deployments.apps/web` -> `deployments`; `Pod` -> `pod`."""
    return token.split("/", 1)[0].split(".", 1)[0].lower()


def _refuse_escape(flag: str, namespace: str | None = None) -> None:
    if flag in _ESCAPE_FLAGS:
        where = f" ({namespace})" if namespace else ""
        raise KubectlRefused(
            f"flag {flag} is not allowed: kubectl runs as the operator, in the Subject's "
            f"namespace{where}, and reads no local files"
        )


def read_command(argv: object, namespace: str) -> ReadCommand:
    """The argv to run for a read, with the namespace forced; `KubectlRefused` otherwise."""
    args = _check_vector(argv)
    verb = args[0]
    if verb not in READ_VERBS:
        raise KubectlRefused(
            f"kubectl {verb} is not a read (reads: {', '.join(sorted(READ_VERBS))}); it was "
            "not run. A change must be proposed with propose_action, action \"kubectl\" and "
            "params {\"argv\": [...]}: it is a high-risk action that a person approves"
        )
    if "--" in args:
        raise KubectlRefused("'--' is not allowed")
    out: list[str] = [verb]
    positionals: list[str] = []
    has_tail = False
    i = 1
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            positionals.append(arg)
            out.append(arg)
            i += 1
            continue
        flag = _flag_name(arg)
        _refuse_escape(flag, namespace)
        if not arg.startswith("--") and len(flag) > 2:
            raise KubectlRefused(f"write short flags separately, with their value apart: {arg}")
        if flag in _BOOL_FLAGS:
            out.append(arg)
            i += 1
            continue
        if flag not in _VALUE_FLAGS:
            raise KubectlRefused(
                f"flag {flag} is not allowed for reads (allowed: "
                f"{', '.join(sorted(_VALUE_FLAGS | _BOOL_FLAGS))})"
            )
        if "=" in arg:
            value = arg.split("=", 1)[1]
            i += 1
        elif i + 1 < len(args):
            value = args[i + 1]
            i += 2
        else:
            raise KubectlRefused(f"flag {flag} needs a value")
        if flag in ("-n", "--namespace"):
            if value != namespace:
                raise KubectlRefused(
                    f"only the Subject's namespace {namespace!r} can be read, not {value!r}"
                )
            continue  # forced below
        if flag in ("-o", "--output"):
            _check_output(value)
        if flag == "--tail":
            has_tail = True
            if not value.lstrip("-").isdigit() or not 0 <= int(value) <= MAX_LOG_TAIL:
                raise KubectlRefused(f"--tail must be 0 to {MAX_LOG_TAIL}")
        out += [flag, value]
    _check_positionals(verb, positionals)
    if verb == "logs" and not has_tail:
        out.append(f"--tail={DEFAULT_LOG_TAIL}")  # an unbounded log would only be truncated
    out.insert(1, f"--namespace={namespace}")
    return ReadCommand(verb, out)


def _check_output(value: str) -> None:
    if value in _OUTPUT_FORMATS or value.startswith(_OUTPUT_TEMPLATES):
        return
    raise KubectlRefused(
        f"output format {value!r} is not allowed (allowed: {', '.join(_OUTPUT_FORMATS)}, "
        f"{', '.join(t + '...' for t in _OUTPUT_TEMPLATES)})"
    )


def _check_positionals(verb: str, positionals: list[str]) -> None:
    if verb in _NO_POSITIONALS and positionals:
        raise KubectlRefused(f"kubectl {verb} takes no arguments here")
    for token in positionals:
        for part in token.split(","):
            if _kind_of(part) in SECRET_KINDS:
                raise KubectlRefused("Secrets are never read")
    if verb not in ("get", "describe", "top"):
        return  # logs names a pod; explain a schema path
    for n, token in enumerate(positionals):
        if "/" in token:
            kinds = [_kind_of(token)]
        elif n == 0:
            kinds = [_kind_of(part) for part in token.split(",")]
        else:
            continue  # an object name after the kind
        for kind in kinds:
            if kind not in KIND_ALIASES or (verb == "top" and KIND_ALIASES[kind] != "pods"):
                raise KubectlRefused(
                    f"kind {kind!r} cannot be read here (kinds: {', '.join(sorted(_KINDS))}; "
                    "top: pods)"
                )


def mutation_problems(argv: object) -> list[str]:
    """Why this mutating command must not be proposed (empty: it may go to the gate)."""
    try:
        args = _check_vector(argv)
    except KubectlRefused as err:
        return [str(err)]
    problems: list[str] = []
    verb = args[0]
    if verb in READ_VERBS:
        problems.append(f"kubectl {verb} is a read: use the kubectl tool, not an action")
    if verb in _NEVER_VERBS:
        problems.append(f"kubectl {verb} is never allowed")
    if "--" in args:
        problems.append("'--' is not allowed")
    for arg in args[1:]:
        if arg.startswith("-"):
            flag = _flag_name(arg)
            if flag in _ESCAPE_FLAGS or flag in ("-n", "--namespace"):
                problems.append(f"flag {flag} is not allowed: the command runs as the operator, "
                                "in the Subject's namespace, and reads no local files")
            elif flag in _MASS_FLAGS:
                problems.append(f"flag {flag} would act on many objects at once: name each "
                                "object")
            elif not arg.startswith("--") and len(flag) > 2:
                problems.append(f"write short flags separately: {arg}")
            continue
        # Every other token is checked, flag values included: which flags take a value
        # depends on the verb, and refusing a value spelled "secrets" costs nothing.
        for part in arg.split(","):
            kind = _kind_of(part)
            if kind in SECRET_KINDS:
                problems.append("Secrets are never touched by the agent")
            elif kind == "all":
                problems.append("'all' would act on many objects at once: name each object")
    return sorted(set(problems))
