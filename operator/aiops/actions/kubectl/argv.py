"""What a model may ask of kubectl, decided from the argument vector alone (no shell is ever
involved, so `;`, `|` or `$(...)` are just characters in an argument).

- `read_command(argv, namespace)`: a read (get, describe, logs, ...) the kubectl tool may run,
  rewritten with `--namespace` forced; anything else raises `KubectlRefused`. Flags are
  allowlisted, not blocklisted: a flag we do not know (`--raw`, `--kubeconfig`, `-f`,
  `-o go-template-file=...`) could read outside the namespace or from the operator's disk.
- `mutation_command(argv)`: a change proposed as the core action `kubectl`, checked against an
  allowlist of verbs, kinds and flags per verb (see `_VERBS`) and rewritten into one
  unambiguous form: the verb, the object as `resource.version.group/name`, then every flag as
  `--flag=value`. `MutationCommand.argv(dry_run=True)` puts `--dry-run=server` right after
  the verb, so nothing the model wrote can take it as a flag's value. `mutation_problems(argv)`
  lists every reason one is refused (empty: it may go to the policy gate, which checks again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiops.actions.kubectl.patch_fields import patch_problem
from aiops.api import CATEGORY, GROUP, KINDS

READ_VERBS = frozenset(
    {"get", "describe", "logs", "top", "explain", "api-resources", "api-versions", "version"}
)

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
_VALUE_FLAGS = frozenset(
    {
        "-o",
        "--output",
        "-l",
        "--selector",
        "--field-selector",
        "--sort-by",
        "-L",
        "--label-columns",
        "--tail",
        "-c",
        "--container",
        "--since",
        "--since-time",
        "--limit-bytes",
        "--api-version",
        "--chunk-size",
        "--template",
        "--request-timeout",
        "--max-log-requests",
        "--api-group",
        "--verbs",
        "--subresource",
        "-n",
        "--namespace",
    }
)
_BOOL_FLAGS = frozenset(
    {
        "--show-labels",
        "--no-headers",
        "--all-containers",
        "-p",
        "--previous",
        "--timestamps",
        "--prefix",
        "--recursive",
        "--show-kind",
        "--ignore-not-found",
        "--show-events",
        "--containers",
        "--namespaced",
        "--client",
        "--show-managed-fields",
        "--sort",
    }
)
_OUTPUT_FORMATS = ("json", "yaml", "wide", "name")
_OUTPUT_TEMPLATES = ("jsonpath=", "jsonpath-as-json=", "custom-columns=", "go-template=")
_NO_POSITIONALS = frozenset({"api-resources", "api-versions", "version"})

# Flags that leave the namespace, change identity or credentials, or read or write local files.
_ESCAPE_FLAGS = frozenset(
    {
        "-A",
        "--all-namespaces",
        "--kubeconfig",
        "--context",
        "--cluster",
        "--user",
        "--as",
        "--as-group",
        "--as-uid",
        "--as-user-extra",
        "--token",
        "--server",
        "-s",
        "--insecure-skip-tls-verify",
        "--certificate-authority",
        "--client-key",
        "--client-certificate",
        "--username",
        "--password",
        "--raw",
        "-f",
        "--filename",
        "-k",
        "--kustomize",
        "--kuberc",
        "--cache-dir",
        "--log-file",
        "--log-dir",
        "--profile",
        "--profile-output",
        "--patch-file",
        "--env-file",
    }
)
# Flags that let one mutating command reach many objects at once.
_MASS_FLAGS = frozenset({"--all", "-l", "--selector", "--field-selector"})
_NEVER_VERBS = frozenset(
    {
        "exec",
        "attach",
        "port-forward",
        "proxy",
        "cp",
        "debug",
        "run",
        "auth",
        "config",
        "plugin",
        "alpha",
        "certificate",
        "drain",
        "cordon",
        "uncordon",
        "taint",
    }
)


class KubectlRefused(ValueError):
    """The command is not allowed; the message says why, for the model."""


@dataclass(frozen=True)
class ReadCommand:
    verb: str
    argv: list[str]  # what to pass kubectl, namespace included


def _check_vector(argv: object) -> list[str]:
    if isinstance(argv, str):
        raise KubectlRefused(
            'argv must be a list of arguments, e.g. ["get", "pods"], never one string: '
            "no shell is involved"
        )
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise KubectlRefused("argv must be a non-empty list of strings")
    if len(argv) > MAX_ARGS or any(len(a) > MAX_ARG_LEN for a in argv):
        raise KubectlRefused(f"argv is limited to {MAX_ARGS} arguments of {MAX_ARG_LEN} chars")
    if any("\x00" in a for a in argv):
        raise KubectlRefused("arguments must not contain NUL characters")
    if argv[0].startswith("-"):
        raise KubectlRefused('put the verb first, e.g. ["get", "pods", "-o", "wide"]')
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
            f"namespace{where}, and reads or writes no local files"
        )


def read_command(argv: object, namespace: str) -> ReadCommand:
    """The argv to run for a read, with the namespace forced; `KubectlRefused` otherwise."""
    args = _check_vector(argv)
    verb = args[0]
    if verb not in READ_VERBS:
        raise KubectlRefused(
            f"kubectl {verb} is not a read (reads: {', '.join(sorted(READ_VERBS))}); it was "
            'not run. A change must be proposed with propose_action, action "kubectl" and '
            'params {"argv": [...]}: it is a high-risk action that a person approves'
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


# -- mutations: the core action `kubectl` -------------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    resource: str
    version: str
    group: str = ""

    @property
    def full(self) -> str:
        """`deployments.v1.apps`, `configmaps.v1.`: what kubectl is given, fully qualified so
        that no short name or CRD of another group can stand for it."""
        return f"{self.resource}.{self.version}.{self.group}"


# Kinds a change may name: namespaced objects of the Subject's own workload. Never Secrets,
# ServiceAccounts or RBAC (identity and credentials), never cluster-scoped kinds (the command
# is confined to one namespace), never the aiops.dev API (the agent does not change its own
# incident, approvals or subjects).
_MUTABLE: dict[str, _Kind] = {
    k.resource: k
    for k in (
        _Kind("pods", "v1"),
        _Kind("services", "v1"),
        _Kind("configmaps", "v1"),
        _Kind("persistentvolumeclaims", "v1"),
        _Kind("deployments", "v1", "apps"),
        _Kind("statefulsets", "v1", "apps"),
        _Kind("daemonsets", "v1", "apps"),
        _Kind("replicasets", "v1", "apps"),
        _Kind("jobs", "v1", "batch"),
        _Kind("cronjobs", "v1", "batch"),
        _Kind("poddisruptionbudgets", "v1", "policy"),
        _Kind("horizontalpodautoscalers", "v2", "autoscaling"),
    )
}
_AIOPS_NAMES = frozenset(
    {CATEGORY} | {n for k in KINDS for n in (k.PLURAL, k.SINGULAR, *k.SHORT_NAMES)}
)
_WORKLOADS = ("deployments", "statefulsets", "daemonsets")
MAX_REPLICAS = 1000
_LABEL_KEY = re.compile(
    r"^([A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_CONTAINER = re.compile(r"^(\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$")
_OBJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_QUANTITY = r"[a-z0-9./-]{1,63}=[0-9.]+[A-Za-z]{0,2}"
_QUANTITIES = re.compile(rf"^{_QUANTITY}(,{_QUANTITY})*$")
_VERBOSE_FLAGS = frozenset({"-v", "--v", "--vmodule"})

Check = Callable[[str], str | None]  # the problem with a flag's value, or None


def _integer(low: int, high: int) -> Check:
    def check(value: str) -> str | None:
        if value.isdigit() and low <= int(value) <= high:
            return None
        return f"takes a whole number from {low} to {high}, not {value!r}"

    return check


def _one_of(*allowed: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in allowed else f"takes {' or '.join(allowed)}, not {value!r}"

    return check


def _text(value: str) -> str | None:
    return None if value.strip() else "needs a value that is not empty"


def _patch(value: str) -> str | None:
    try:
        doc = json.loads(value)
    except ValueError:
        return 'takes a JSON patch, e.g. \'{"spec":{"replicas":2}}\''
    if not isinstance(doc, dict | list):
        return "takes a JSON object or list"
    return patch_problem(doc)


def _pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(value: str) -> str | None:
        return None if regex.match(value) else f"takes {what}, not {value!r}"

    return check


@dataclass(frozen=True)
class _Flag:
    name: str  # the long form, as kubectl is given it
    check: Check | None  # None: a boolean flag, given alone or as =true / =false
    short: str | None = None


@dataclass(frozen=True)
class _Verb:
    words: tuple[str, ...]
    kinds: tuple[str, ...]
    flags: tuple[_Flag, ...] = ()
    # What may follow the object: nothing, KEY=VALUE / KEY- pairs, or CONTAINER=IMAGE pairs.
    pairs: Literal["none", "keys", "images"] = "none"
    needs: tuple[str, ...] = ()  # at least one of these flags

    @property
    def title(self) -> str:
        return " ".join(self.words)


_OVERWRITE = _Flag("--overwrite", None)
_RESOURCE_VERSION = _Flag("--resource-version", _text)
# The changes a remediation needs, each on one named object, each able to run as a server-side
# dry run first. Left out on purpose: create (tokens, role bindings: identity), apply, replace
# and edit (whole objects, files, an editor), exec/cp/debug (a shell in a container), set env
# (copies Secrets into a pod spec, reads --env-file), set serviceaccount and set subject
# (identity), drain/cordon/taint (cluster-scoped nodes), and delete of anything a controller
# does not recreate except ConfigMaps and Jobs (a deleted Deployment or volume claim is an
# outage or lost data, not a remediation). No verb has -o/--template (output that drops the key
# names redaction relies on), --field-manager, --subresource, --local, -f/-k or --dry-run.
# `rollout restart|pause|resume` have no --dry-run in kubectl, so they could never pass the
# server-side dry run: refused with the equivalent patch, which can (`_NO_DRY_RUN`).
_VERBS: dict[tuple[str, ...], _Verb] = {
    v.words: v
    for v in (
        _Verb(("annotate",), tuple(_MUTABLE), (_OVERWRITE, _RESOURCE_VERSION), pairs="keys"),
        _Verb(("label",), tuple(_MUTABLE), (_OVERWRITE, _RESOURCE_VERSION), pairs="keys"),
        _Verb(
            ("patch",),
            tuple(_MUTABLE),
            (
                _Flag("--patch", _patch, "-p"),
                _Flag("--type", _one_of("strategic", "merge", "json")),
            ),
            needs=("--patch",),
        ),
        _Verb(
            ("scale",),
            ("deployments", "statefulsets", "replicasets"),
            (
                _Flag("--replicas", _integer(0, MAX_REPLICAS)),
                _Flag("--current-replicas", _integer(0, MAX_REPLICAS)),
                _RESOURCE_VERSION,
            ),
            needs=("--replicas",),
        ),
        _Verb(
            ("delete",),
            ("pods", "configmaps", "jobs"),
            (
                _Flag("--grace-period", _integer(1, 3600)),
                _Flag("--cascade", _one_of("background", "foreground")),
                _Flag("--wait", None),
            ),
        ),
        _Verb(("rollout", "undo"), _WORKLOADS, (_Flag("--to-revision", _integer(0, 2**31 - 1)),)),
        _Verb(("set", "image"), _WORKLOADS, pairs="images"),
        _Verb(
            ("set", "resources"),
            _WORKLOADS,
            (
                _Flag("--containers", _pattern(_CONTAINER, "a container name or *"), "-c"),
                _Flag("--limits", _pattern(_QUANTITIES, "RESOURCE=QUANTITY[,...], e.g. cpu=200m")),
                _Flag(
                    "--requests", _pattern(_QUANTITIES, "RESOURCE=QUANTITY[,...], e.g. cpu=200m")
                ),
            ),
            needs=("--limits", "--requests"),
        ),
    )
}
_TEMPLATE_PATCH = (
    '\'{"spec":{"template":{"metadata":{"annotations":'
    '{"kubectl.kubernetes.io/restartedAt":"<now, RFC 3339>"}}}}}\''
)
_NO_DRY_RUN = {
    "restart": f"patch deployment/NAME (or statefulset/, daemonset/) -p {_TEMPLATE_PATCH}",
    "pause": 'patch deployment/NAME --type=merge -p \'{"spec":{"paused":true}}\'',
    "resume": 'patch deployment/NAME --type=merge -p \'{"spec":{"paused":false}}\'',
}


def _summary() -> str:
    """`annotate|label|patch on pods, ...; scale on ...`: the allowlist in a line, for the
    action's description and for refusals."""
    by_kinds: dict[tuple[str, ...], list[str]] = {}
    for verb in _VERBS.values():
        by_kinds.setdefault(verb.kinds, []).append(verb.title)
    return "; ".join(f"{'|'.join(v)} on {', '.join(kinds)}" for kinds, v in by_kinds.items())


ALLOWED_CHANGES = _summary()


@dataclass(frozen=True)
class MutationCommand:
    """An allowed change, in one unambiguous form: `args` are the object as
    `resource.version.group/name`, its pairs, then every flag as `--flag=value`."""

    verb: tuple[str, ...]
    args: tuple[str, ...]

    def argv(self, *, dry_run: bool) -> list[str]:
        # The dry-run flag comes right after the verb, before anything the model wrote: even a
        # flag that takes a value could not swallow it (all of ours are `--flag=value` anyway).
        return [*self.verb, *(["--dry-run=server"] if dry_run else []), *self.args]


def mutation_command(argv: object) -> MutationCommand:
    """The change to run, or `KubectlRefused` with every reason it is not allowed."""
    command, problems = _parse_mutation(argv)
    if command is None:
        raise KubectlRefused("; ".join(problems))
    return command


def mutation_problems(argv: object) -> list[str]:
    """Why this mutating command must not be proposed (empty: it may go to the gate)."""
    return _parse_mutation(argv)[1]


def _parse_mutation(argv: object) -> tuple[MutationCommand | None, list[str]]:
    try:
        args = _check_vector(argv)
        verb, rest = _mutation_verb(args)
    except KubectlRefused as err:
        return None, [str(err)]
    given, positionals, problems = _mutation_flags(verb, rest)
    flags_ok = not problems
    if not positionals:
        return None, [*problems, f"kubectl {verb.title} needs one object: KIND NAME or KIND/NAME"]
    target = _mutation_object(verb, positionals, problems, check_name=flags_ok)
    pairs = positionals[1 if "/" in positionals[0] else 2 :]
    if flags_ok:  # with a flag refused, what follows may be that flag's value: not judged
        problems += _mutation_pairs(verb, pairs)
        if verb.needs and not any(n in given for n in verb.needs):
            problems.append(f"kubectl {verb.title} needs {' or '.join(verb.needs)}")
    if problems or target is None:
        return None, list(dict.fromkeys(problems))
    flags = [f"{f.name}={given[f.name]}" for f in verb.flags if f.name in given]
    return MutationCommand(verb.words, (target, *pairs, *flags)), []


def _mutation_verb(args: list[str]) -> tuple[_Verb, list[str]]:
    first = args[0]
    if first in READ_VERBS:
        raise KubectlRefused(f"kubectl {first} is a read: use the kubectl tool, not an action")
    if first in ("rollout", "set"):
        sub = args[1] if len(args) > 1 else ""
        if (first, sub) in _VERBS:
            return _VERBS[first, sub], args[2:]
        if first == "rollout" and sub in _NO_DRY_RUN:
            raise KubectlRefused(
                f"kubectl rollout {sub} has no server-side dry run, so it cannot be proposed; "
                f"propose the same change as a patch: {_NO_DRY_RUN[sub]}"
            )
        said = " ".join(args[:2])
        raise KubectlRefused(f"kubectl {said} is not allowed (allowed: {ALLOWED_CHANGES})")
    if (first,) in _VERBS:
        return _VERBS[first,], args[1:]
    if first == "create":
        raise KubectlRefused(
            "kubectl create is never allowed: the agent creates no objects (no tokens, role "
            f"bindings or workloads); it may change one existing object: {ALLOWED_CHANGES}"
        )
    never = "never allowed" if first in _NEVER_VERBS else "not an allowed change"
    raise KubectlRefused(f"kubectl {first} is {never} (allowed: {ALLOWED_CHANGES})")


def _mutation_flags(verb: _Verb, rest: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """The verb's flags as {long name: value}, the positionals, and what is wrong. pflag's
    rules, strictly: a flag's value is `--flag=value` or the next argument; a value that
    starts with `-` must be written with `=`, so a flag left last or followed by another
    flag lacks its value and is refused here, not guessed."""
    by_name = {n: f for f in verb.flags for n in (f.name, f.short) if n}
    given: dict[str, str] = {}
    positionals: list[str] = []
    problems: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if arg == "--":
            problems.append("'--' is not allowed")
            continue
        if not arg.startswith("-") or arg == "-":
            positionals.append(arg)
            continue
        name, has_value, value = arg.partition("=")
        if not arg.startswith("--") and len(name) > 2:
            problems.append(f"write short flags separately, with their value apart: {arg}")
            continue
        flag = by_name.get(name)
        if flag is None:
            problems.append(_refused_flag(name, verb))
            continue
        if flag.check is None:
            if has_value and value not in ("true", "false"):
                problems.append(f"flag {name} takes true or false, not {value!r}")
            value = value if has_value else "true"
        elif not has_value:
            if i < len(rest) and not rest[i].startswith("-"):
                value = rest[i]
                i += 1
            else:
                problems.append(f"flag {name} needs a value: write {flag.name}=VALUE")
                continue
        if flag.name in given:
            problems.append(f"flag {flag.name} is given twice")
            continue
        problem = flag.check(value) if flag.check else None
        if problem:
            problems.append(f"flag {name} {problem}")
        given[flag.name] = value
    return given, positionals, problems


def _refused_flag(name: str, verb: _Verb) -> str:
    if name in _ESCAPE_FLAGS or name in ("-n", "--namespace"):
        return (
            f"flag {name} is not allowed: the command runs as the operator, in the "
            "Subject's namespace, and reads or writes no local files"
        )
    if name in _MASS_FLAGS:
        return f"flag {name} would act on many objects at once: name each object"
    if name in _VERBOSE_FLAGS:
        return f"flag {name} is not allowed: verbose kubectl prints requests and responses"
    if name == "--dry-run":
        return (
            "flag --dry-run is not allowed: the operator runs the server-side dry run "
            "itself, when the step is proposed and again just before it runs"
        )
    allowed = ", ".join(n for f in verb.flags for n in (f.short, f.name) if n) or "none"
    return f"flag {name} is not allowed for kubectl {verb.title} (allowed: {allowed})"


def _mutation_object(
    verb: _Verb, positionals: list[str], problems: list[str], *, check_name: bool
) -> str | None:
    """`resource.version.group/name` of the one object the command names, or None."""
    first = positionals[0]
    kind_token, slash, name = first.partition("/")
    if not slash:
        name = positionals[1] if len(positionals) > 1 else ""
    kind = _mutable_kind(verb, kind_token, problems)
    if not check_name:
        return None
    if not _OBJECT_NAME.match(name) or "/" in name:
        problems.append(
            f"kubectl {verb.title} changes one object, named as KIND NAME or KIND/NAME"
            + (f" ({name!r} is not an object name)" if name else "")
        )
        return None
    return f"{kind.full}/{name}" if kind else None


def _mutable_kind(verb: _Verb, token: str, problems: list[str]) -> _Kind | None:
    low = token.lower()
    parts = low.split(".")
    head = parts[0]
    if "," in low:
        problems.append(f"name one kind and one object per step, not {token!r}")
    elif head in SECRET_KINDS:
        problems.append("Secrets are never touched by the agent")
    elif head == "all":
        problems.append("'all' would act on many objects at once: name each object")
    elif head in _AIOPS_NAMES or low.endswith(GROUP) or f".{GROUP}." in f"{low}.":
        problems.append(
            f"{token!r} is of the {GROUP} API (Subjects, Incidents, Approvals, Chaos): the agent "
            "never changes it"
        )
    else:
        kind = _MUTABLE.get(KIND_ALIASES.get(head, ""))
        group = ".".join(parts[2:]) if len(parts) > 2 else None
        spelled = kind is not None and (
            len(parts) == 1
            or (len(parts) == 2 and parts[1] == kind.group != "")
            or (len(parts) > 2 and parts[1] == kind.version and group == kind.group)
        )
        if kind is not None and spelled:
            if kind.resource in verb.kinds:
                return kind
            problems.append(
                f"kubectl {verb.title} cannot change {kind.resource} (it changes: "
                f"{', '.join(verb.kinds)})"
            )
        else:
            problems.append(
                f"kind {token!r} cannot be changed by the agent (kinds for kubectl "
                f"{verb.title}: {', '.join(verb.kinds)}; never Secrets, cluster-scoped kinds "
                f"or the {GROUP} API)"
            )
    return None


def _mutation_pairs(verb: _Verb, extra: list[str]) -> list[str]:
    """What is wrong with what follows the object: KEY=VALUE or KEY- pairs for annotate and
    label, CONTAINER=IMAGE for set image, nothing for the rest."""
    if verb.pairs == "none":
        if extra:
            return [
                f"kubectl {verb.title} changes one object per step: propose one step per "
                f"object (got also {' '.join(extra)!r})"
            ]
        return []
    if not extra:
        what = "KEY=VALUE (or KEY- to remove)" if verb.pairs == "keys" else "CONTAINER=IMAGE"
        return [f"kubectl {verb.title} needs at least one {what} after the object"]
    problems: list[str] = []
    for pair in extra:
        key, eq, value = pair.partition("=")
        if verb.pairs == "keys":
            ok = (
                (_LABEL_KEY.match(key) is not None)
                if eq
                else (pair.endswith("-") and _LABEL_KEY.match(pair[:-1]) is not None)
            )
            what = "KEY=VALUE or KEY- (a label or annotation key, e.g. example.com/reason)"
        else:
            ok = bool(eq and _CONTAINER.match(key) and _IMAGE.match(value))
            what = "CONTAINER=IMAGE, e.g. app=registry.example/app:1.2.3"
        if not ok:
            problems.append(f"{pair!r} after the object must be {what}")
    return problems
