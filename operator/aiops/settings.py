"""Every setting of aiops, defined once: each is a documented field with its environment
variable, its default and its bounds (kopf's own `kopf._cogs.configs.configuration` is the
model: settings as documented classes, not reads scattered through the code).

`OperatorSettings` is what `aiops operator run` runs with. Each setting comes from the
command line (`--approval-timeout 30m`), else from its environment variable, else its default;
the loops, the chaos driver, the agent and kubectl are handed their values through the
runtime and never read the environment themselves. A bad value stops the operator at start
with the variable named (`SettingsError`), never an incident mid-run.

`WorkstationSettings` is what the workstation commands (`aiops cluster`, `aiops up`,
`aiops audit`, the client commands) read.

Deliberately not here:
- `AIOPS_CRASHPOINTS`, `AIOPS_CRASHPOINTS_DIR`: test hooks that kill the operator at a named
  point (`aiops.crashpoints`); inert unless set, and no setting of a real operator.
- `RL_*`: the rate limiter service's own settings (`ratelimiter.config`): the service, not the
  operator. Its local stack (`ratelimiter.localstack`) reads `AIOPS_TOOLS_BIN` itself: that
  package is installed without the operator and never imports it.
- `AIOPS_CACHE_DIR`, `AIOPS_KIND_*`: read by the shell scripts that use them
  (hack/tools/build.sh, hack/kind-up.sh); listed in docs/settings.md all the same.
- The environment a child process inherits (kubectl's allowlist in `aiops.actions.kubectl`,
  the cluster's processes): passed on, not read as settings.

docs/settings.md's table is generated from these models (`aiops docs`, `aiops.docgen`; a test
fails when it is stale); `aiops operator settings` prints it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)
from pydantic.fields import FieldInfo

from aiops.api.durations import format_duration, to_timedelta
from aiops.shard import Shard


class SettingsError(ValueError):
    """One line per bad setting, each naming its variable and the value it had."""


# -- value types ----------------------------------------------------------------------------

_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,6})?")


def _parse_duration(value: Any) -> Any:
    """`30s`, `5m`, `1h30m`, or a plain number of seconds (`1800`, as the variables that
    predate the duration syntax were given)."""
    if not isinstance(value, str):
        return value  # a timedelta (or a number) from code: pydantic checks it
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return timedelta(seconds=float(text))
    try:
        return to_timedelta(text)
    except ValueError:
        raise ValueError("not a duration like 30s, 5m or 1h30m, nor a number of seconds") from None


Duration = Annotated[timedelta, BeforeValidator(_parse_duration)]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            "not a namespace name (a DNS label: at most 63 lowercase letters, "
            "digits and '-', a letter or digit at each end)"
        )
    return value


_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


def _secret_name(value: str) -> str:
    if not _SECRET_NAME.fullmatch(value):
        raise ValueError(
            "not a Secret name (a DNS subdomain: lowercase letters, digits, '-' and '.')"
        )
    return value


def _secret_key(value: str) -> str:
    if not _SECRET_KEY.fullmatch(value):
        raise ValueError("not a key of a Secret (letters, digits, '-', '_' and '.')")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL with a host")
    return value


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            "not an IP address (127.0.0.1 for this host only, 0.0.0.0 for all)"
        ) from None
    return value


def _executable(value: str) -> str:
    """A path, or a name looked up on PATH; checked at start, so that a typo is not found at
    the first kubectl action of the first incident."""
    if shutil.which(value) is None:
        raise ValueError("no such executable (give a path, or a name on PATH)")
    return value


# -- fields ---------------------------------------------------------------------------------


def setting(
    env: str,
    doc: str,
    *,
    default: Any = None,
    default_factory: Any = None,
    shown_default: str | None = None,
    flag: bool = True,
    quiet: bool = False,
    metavar: str | None = None,
    **constraints: Any,
) -> Any:
    """A settings field: `env` is its environment variable (and the key `from_env` reads);
    `doc` says what it means; `flag`: also an option of `aiops operator run` (never for a
    secret: a flag is visible in `ps`). `shown_default`: how the docs and --help show a
    default computed at start. `quiet`: an error about it never repeats the value (it is, or
    may carry, a secret). `metavar`: what --help calls the value, when its type does not say.
    """
    extra: dict[str, Any] = {"flag": flag, "quiet": quiet}
    if metavar is not None:
        extra["metavar"] = metavar
    if shown_default is not None:
        extra["shown_default"] = shown_default
    if default_factory is not None:
        return Field(
            default_factory=default_factory,
            alias=env,
            description=doc,
            json_schema_extra=extra,
            **constraints,
        )
    return Field(default, alias=env, description=doc, json_schema_extra=extra, **constraints)


def state_home(env: Mapping[str, str]) -> Path:
    """$XDG_STATE_HOME, else ~/.local/state."""
    return Path(env.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")


def _audit_dir_default() -> Path:
    return state_home(os.environ) / "aiops" / "audit"


def _audit_dir() -> Any:
    # One definition for both models: the operator writes where `aiops audit` reads.
    return setting(
        "AIOPS_AUDIT_DIR",
        "The audit logs (one per Incident, `<namespace>/<name>.jsonl`) and the agents' "
        "checkpoints.",
        default_factory=_audit_dir_default,
        shown_default="$XDG_STATE_HOME/aiops/audit, else ~/.local/state/aiops/audit",
    )


def _anthropic_api_key() -> Any:
    # One definition for both models: `aiops up` starts the operator with the agent it says.
    return setting(
        "ANTHROPIC_API_KEY",
        "The key of the Anthropic backend for Subjects without `spec.agent.apiKeySecretRef`; "
        "without one, `backend: auto` investigates with the runbook.",
        flag=False,
        shown_default="none",
        quiet=True,
    )


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, overrides: Mapping[str, str] | None = None
    ) -> Self:
        """The settings from `env` (default: the process's environment), `overrides` (by
        variable name: the command line's) winning. Unset and empty variables take their
        defaults; `SettingsError` names every bad one."""
        env = {**(os.environ if env is None else env), **(overrides or {})}
        given = {
            f.alias: env[f.alias].strip()
            for f in cls.model_fields.values()
            if f.alias and env.get(f.alias, "").strip()
        }
        defaults = cls._defaults_from(env)
        try:
            return cls.model_validate({**defaults, **given})
        except ValidationError as err:
            shown = {k: v for k, v in given.items() if not _is(cls.model_fields, k, "quiet")}
            raise SettingsError(_explain(err, shown)) from None

    @classmethod
    def _defaults_from(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """Defaults that depend on other variables (XDG_STATE_HOME), read from `env`."""
        return {}


def _is(fields: Mapping[str, FieldInfo], env: str, key: str) -> bool:
    """Whether the field of variable `env` is marked `key` (`flag`, `quiet`)."""
    for f in fields.values():
        if f.alias == env and isinstance(f.json_schema_extra, dict):
            return bool(f.json_schema_extra.get(key))
    return False


def _explain(err: ValidationError, given: Mapping[str, str]) -> str:
    lines = []
    for e in err.errors():
        var = str(e["loc"][0]) if e["loc"] else "settings"
        msg = str(e["msg"]).removeprefix("Value error, ")
        raw = given.get(var)
        if raw is None:
            lines.append(f"{var}: {msg}")
        else:  # the value as given, clipped: the line says which one, not all of it
            shown = raw if len(raw) <= 40 else raw[:37] + "..."
            lines.append(f"{var}={shown!r}: {msg}")
    return "; ".join(lines)


# -- the operator ---------------------------------------------------------------------------


class OperatorSettings(_Settings):
    """The settings of `aiops operator run`."""

    audit_dir: Path = _audit_dir()
    operator_namespace: Annotated[str, AfterValidator(_dns_label)] = setting(
        "AIOPS_OPERATOR_NAMESPACE",
        "Where the operator's ConfigMap `aiops-switch` lives; `data.actions: stopped` there "
        "stops every action at once.",
        default="aiops-system",
        metavar="NAMESPACE",
    )
    approval_timeout: Duration = setting(
        "AIOPS_APPROVAL_TIMEOUT",
        "How long an Incident waits for an Approval before it escalates, unless its Subject "
        "says (`spec.approvalTimeout`). A duration (`30m`) or seconds (`1800`).",
        default=timedelta(minutes=30),
        ge=timedelta(seconds=1),
        le=timedelta(hours=168),
    )
    verify_timeout: Duration = setting(
        "AIOPS_VERIFY_TIMEOUT",
        "How long an action has to show the Subject recovering before it counts as failed. "
        "A duration or seconds.",
        default=timedelta(seconds=60),
        ge=timedelta(seconds=1),
        le=timedelta(hours=1),
    )
    actions_per_incident: int = setting(
        "AIOPS_ACTIONS_PER_INCIDENT",
        "The most actions one Incident may run (the policy gate's budget); 0 runs none.",
        default=5,
        ge=0,
        le=100,
    )
    chaos_max_duration: Duration = setting(
        "AIOPS_CHAOS_MAX_DURATION",
        "The longest fault this operator injects: a longer Chaos fails (`DurationTooLong`).",
        default=timedelta(hours=1),
        ge=timedelta(seconds=1),
        le=timedelta(hours=24),
    )
    chaos_settle_timeout: Duration = setting(
        "AIOPS_CHAOS_SETTLE_TIMEOUT",
        "How long after the revert a Chaos watches for its Subject to be healthy again "
        "before it says it is not.",
        default=timedelta(minutes=5),
        ge=timedelta(seconds=1),
        le=timedelta(hours=24),
    )
    agent_max_refused_per_turn: int = setting(
        "AIOPS_AGENT_MAX_REFUSED_PER_TURN",
        "Refused or failed tool calls tolerated in one model turn; at the limit the agent "
        "escalates.",
        default=8,
        ge=1,
        le=1000,
    )
    agent_max_refused_per_session: int = setting(
        "AIOPS_AGENT_MAX_REFUSED_PER_SESSION",
        "Refused or failed tool calls tolerated in one investigation; at the limit the agent "
        "escalates.",
        default=12,
        ge=1,
        le=1000,
    )
    max_concurrent_sessions: int = setting(
        "AIOPS_MAX_CONCURRENT_SESSIONS",
        "Investigations (agent sessions) run at once; further Incidents wait in Investigating "
        "for a free one, so a flood of Incidents never floods the model endpoint.",
        default=8,
        ge=1,
        le=1000,
    )
    kubectl: Annotated[str, AfterValidator(_executable)] | None = setting(
        "AIOPS_KUBECTL",
        "The kubectl that the `kubectl` action and the agent's read tool run.",
        shown_default="kubectl on PATH",
        metavar="PATH",
    )
    anthropic_base_url: Annotated[str, AfterValidator(_http_url)] | None = setting(
        "ANTHROPIC_BASE_URL",
        "Where the Anthropic SDK sends requests (a proxy, or a stand-in server in tests).",
        shown_default="Anthropic's API",
        quiet=True,
        metavar="URL",
    )
    anthropic_api_key: SecretStr | None = _anthropic_api_key()
    metrics_port: int | None = setting(
        "AIOPS_METRICS_PORT",
        "Serve the operator's Prometheus metrics at `/metrics` on this port (docs/operating.md); "
        "a port in use stops the operator at start.",
        shown_default="not served",
        metavar="PORT",
        ge=1,
        le=65535,
    )
    metrics_address: Annotated[str, AfterValidator(_ip_address)] = setting(
        "AIOPS_METRICS_ADDRESS",
        "The address the metrics port listens on: `0.0.0.0` for every interface (in a pod).",
        default="127.0.0.1",
        metavar="ADDRESS",
    )
    log_format: Literal["text", "json"] = setting(
        "AIOPS_LOG_FORMAT",
        "The operator's log: `text` (kopf's lines) or `json` (one JSON object a line, with "
        "the namespace, subject, incident and chaos names of what it concerns).",
        default="text",
        metavar="text|json",
    )
    notify_secret: Annotated[str, AfterValidator(_secret_name)] | None = setting(
        "AIOPS_NOTIFY_SECRET",
        "A Secret in AIOPS_OPERATOR_NAMESPACE whose key AIOPS_NOTIFY_SECRET_KEY holds the "
        "webhook URL that notifications go to (opened, approval needed, resolved, escalated, "
        "chaos injected and recovered); none: no notifications.",
        shown_default="none (no notifications)",
        metavar="NAME",
    )
    notify_secret_key: Annotated[str, AfterValidator(_secret_key)] = setting(
        "AIOPS_NOTIFY_SECRET_KEY",
        "The key of that Secret that holds the webhook URL.",
        default="url",
        metavar="KEY",
    )
    notify_format: Literal["slack", "generic"] = setting(
        "AIOPS_NOTIFY_FORMAT",
        "The notifications' payload: `slack` (an incoming webhook's text and blocks) or "
        "`generic` (the transition as JSON).",
        default="slack",
        metavar="slack|generic",
    )
    notify_timeout: Duration = setting(
        "AIOPS_NOTIFY_TIMEOUT",
        "How long one webhook request may take before it counts as failed (and is retried, "
        "with backoff). A duration or seconds.",
        default=timedelta(seconds=10),
        ge=timedelta(seconds=1),
        le=timedelta(minutes=5),
    )
    notify_retry_max: Duration = setting(
        "AIOPS_NOTIFY_RETRY_MAX",
        "The longest wait between two attempts at a notification the receiver failed; the "
        "waits double from 1 s up to it. A duration or seconds.",
        default=timedelta(seconds=30),
        ge=timedelta(seconds=1),
        le=timedelta(hours=1),
    )
    shard: Shard | None = setting(
        "AIOPS_SHARD",
        "Run as shard I of N (`0/2`, `1/2`): this process owns only the Subjects whose hash of "
        "namespace/name is I modulo N, and their Incidents and Chaos; run one process per "
        "shard, each with the same N (docs/scale.md).",
        shown_default="none (every Subject)",
        metavar="I/N",
    )
    kubeconfig: str | None = setting(
        "KUBECONFIG",
        "Outside a pod: the kubeconfig (kopf, the client and kubectl read it). In a pod the "
        "ServiceAccount is used.",
        flag=False,
        shown_default="~/.kube/config",
    )

    @classmethod
    def _defaults_from(cls, env: Mapping[str, str]) -> dict[str, Any]:
        return {"AIOPS_AUDIT_DIR": state_home(env) / "aiops" / "audit"}

    @property
    def kubectl_binary(self) -> str:
        """What the `kubectl` action runs: AIOPS_KUBECTL, else `kubectl` on PATH."""
        return self.kubectl or "kubectl"

    @property
    def api_key(self) -> str | None:
        return _secret(self.anthropic_api_key)


# -- the workstation ------------------------------------------------------------------------


def _state_dir_default() -> Path:
    return state_home(os.environ) / "aiops"


class WorkstationSettings(_Settings):
    """The settings of the workstation commands: `aiops cluster`, `aiops up`, `aiops demo`,
    `aiops audit`, and the client commands (`aiops approve`, `aiops chaos`, ...)."""

    state_dir: Path = setting(
        "AIOPS_STATE_DIR",
        "Where local clusters and `aiops up` keep their kubeconfig, pids, logs and records.",
        default_factory=_state_dir_default,
        shown_default="$XDG_STATE_HOME/aiops, else ~/.local/state/aiops",
        flag=False,
    )
    tools_bin: Path | None = setting(
        "AIOPS_TOOLS_BIN",
        "A directory of prebuilt tools (kube-apiserver, etcd, kwokctl, kubectl, ...) used "
        "instead of building hack/tools.",
        shown_default="built by hack/tools/build.sh",
        flag=False,
    )
    audit_dir: Path = _audit_dir()
    kubeconfig: str | None = setting(
        "KUBECONFIG",
        "The kubeconfig of the client commands.",
        shown_default="~/.kube/config",
        flag=False,
    )
    anthropic_api_key: SecretStr | None = _anthropic_api_key()

    @property
    def agent(self) -> str:
        """The agent an operator started from here uses for `backend: auto` Subjects."""
        return "anthropic" if _secret(self.anthropic_api_key) else "runbook"

    @classmethod
    def _defaults_from(cls, env: Mapping[str, str]) -> dict[str, Any]:
        home = state_home(env)
        return {"AIOPS_STATE_DIR": home / "aiops", "AIOPS_AUDIT_DIR": home / "aiops" / "audit"}


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


# Read by the shell scripts that use them; documented with the rest.
SCRIPT_SETTINGS: tuple[tuple[str, str, str], ...] = (
    (
        "AIOPS_CACHE_DIR",
        "$XDG_CACHE_HOME/aiops, else ~/.cache/aiops",
        "Where hack/tools/build.sh keeps the Go tools it builds (`<key>/bin`).",
    ),
    ("AIOPS_KIND_CLUSTER", "aiops", "The kind cluster of hack/kind-up.sh and kind-down.sh."),
    (
        "AIOPS_KIND_KUBECONFIG",
        ".work/kind/<cluster>.kubeconfig",
        "Where hack/kind-up.sh writes that cluster's kubeconfig.",
    ),
)


# -- documentation --------------------------------------------------------------------------


def env_name(field: FieldInfo) -> str:
    assert field.alias is not None  # every field is made by `setting`
    return field.alias


def is_flag(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return bool(extra.get("flag", True)) if isinstance(extra, dict) else True


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def metavar(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "metavar" in extra:
        return str(extra["metavar"])
    kinds: dict[Any, str] = {timedelta: "DURATION", int: "N", Path: "PATH"}
    return kinds.get(field.annotation, "TEXT")


def _show(value: Any) -> str:
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def shown_default(field: FieldInfo, code: str = "") -> str:
    """The default as --help and the docs show it; `code`: the quote around a literal value
    (Markdown's backtick), not around a description such as "kubectl on PATH"."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "shown_default" in extra:
        return str(extra["shown_default"])
    return f"{code}{_show(field.default)}{code}"


def bounds(field: FieldInfo) -> str:
    """`1s..168h`, `0..100`, `a DNS label`, or "" when anything goes."""
    lo = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    hi = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    if lo is not None or hi is not None:
        return f"{_show(lo) if lo is not None else ''}..{_show(hi) if hi is not None else ''}"
    if any(getattr(m, "func", None) is _dns_label for m in field.metadata):
        return "a DNS label"
    return ""


def markdown() -> str:
    """docs/settings.md's table, generated from the models."""
    rows = [
        "| variable | flag of `aiops operator run` | default | bounds | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, f in OperatorSettings.model_fields.items():
        flag = f"`{flag_name(name)}`" if is_flag(f) else "environment only"
        rows.append(
            f"| `{env_name(f)}` | {flag} | {shown_default(f, '`')} | {bounds(f)} "
            f"| {f.description} |"
        )
    rows += [
        "",
        "The workstation commands (`aiops cluster`, `aiops up`, `aiops demo`, "
        "`aiops audit`, and the client commands) and the scripts:",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    operator_vars = {env_name(f) for f in OperatorSettings.model_fields.values()}
    for f in WorkstationSettings.model_fields.values():
        if env_name(f) not in operator_vars:
            rows.append(f"| `{env_name(f)}` | {shown_default(f, '`')} | {f.description} |")
    rows += [f"| `{var}` | {default} | {doc} |" for var, default, doc in SCRIPT_SETTINGS]
    return "\n".join(rows) + "\n"
