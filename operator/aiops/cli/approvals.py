"""`aiops approve INCIDENT [ACTION…]` and `aiops reject INCIDENT [ACTION…]`: an Approval as
the current kubectl user. The API server checks `approvedBy` against who is asking (the
ValidatingAdmissionPolicy), so these commands cannot approve for someone else.

`approve` prints each step it approves (action, params, risk, dry run, the policy's reason)
and writes, per step, the digest of exactly that step into the Approval, computed here from
what it printed: the operator runs a step only while it still matches the digest."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from aiops.api import GROUP, VERSION, Approval, Incident, ProposedAction
from aiops.api.approval import step_digest
from aiops.cli.printable import printable
from aiops.settings import WorkstationSettings
from aiops.vocabulary import ApprovalDecision, Verdict

NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="The incident's namespace.")]
AsOpt = Annotated[
    str | None, typer.Option("--as", help="Impersonate this user (like kubectl --as).")
]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why, for the record.")]
# On a terminal the steps are shown and a person confirms before anything is created; a script
# (no terminal) decides at once, as it was told.
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _client(as_user: str | None) -> client.ApiClient:
    api = config.new_client_from_config(config_file=WorkstationSettings.from_env().kubeconfig)
    if as_user:
        api.set_default_header("Impersonate-User", as_user)
    return api


def _whoami(api: client.ApiClient) -> str:
    review: Any = client.AuthenticationV1Api(api).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},  # type: ignore[arg-type]
    )
    return str(review.status.user_info.username)


def _decide(
    decision: ApprovalDecision,
    incident: str,
    actions: list[str] | None,
    namespace: str,
    as_user: str | None,
    reason: str | None,
    yes: bool = False,
) -> None:
    api = _client(as_user)
    custom = client.CustomObjectsApi(api)
    try:
        obj: Any = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, Incident.PLURAL, incident
        )
    except ApiException as err:
        typer.secho(f"aiops: cannot read incident {namespace}/{incident}: {err.reason}", err=True)
        raise typer.Exit(1) from err
    inc = Incident.from_k8s(obj)
    waiting = [p.id for p in inc.status.proposed_actions if p.decision == Verdict.AWAIT_APPROVAL]
    chosen = list(actions or waiting)
    unknown = sorted(set(chosen) - {p.id for p in inc.status.proposed_actions})
    if unknown:
        typer.secho(
            f"aiops: {incident} has no action {', '.join(unknown)} "
            f"(waiting for approval: {', '.join(waiting) or 'none'})",
            err=True,
        )
        raise typer.Exit(1)
    if not chosen and decision == ApprovalDecision.APPROVE:
        typer.secho(
            f"aiops: nothing of {incident} waits for approval (phase {inc.status.phase})", err=True
        )
        raise typer.Exit(1)
    uid = inc.metadata.uid or ""
    steps = {p.id: p for p in inc.status.proposed_actions}
    digests = {}
    for step_id in chosen:
        step = steps[step_id]
        digests[step_id] = step_digest(uid, step.id, step.action, step.params)
        typer.echo(f"{_describe(step)}\n    digest:  {digests[step_id]}")
    user = _whoami(api)
    if (
        not yes
        and sys.stdin.isatty()
        and not typer.confirm(
            f"{decision.capitalize()} {', '.join(chosen) or 'every proposed action'} of {incident} "
            f"as {user}?",
            default=False,
        )
    ):
        typer.secho("aiops: nothing decided; no Approval was created", err=True)
        raise typer.Exit(1)
    body = {
        "apiVersion": Approval.API_VERSION,
        "kind": Approval.KIND,
        "metadata": {"name": f"{incident}-{decision}-{int(time.time())}"[:253]},
        "spec": {
            "incident": incident,
            "incidentUid": uid,
            "actions": chosen,
            "decision": decision,
            "approvedBy": user,
            **({"digests": digests} if decision == ApprovalDecision.APPROVE else {}),
            **({"reason": reason} if reason else {}),
        },
    }
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, Approval.PLURAL, body)
    except ApiException as err:
        typer.secho(
            f"aiops: the API server refused the Approval: {err.body or err.reason}", err=True
        )
        raise typer.Exit(1) from err
    typer.echo(
        f"{decision}d {', '.join(chosen) or 'every proposed action'} of {incident} as {user}"
    )


def _describe(step: ProposedAction) -> str:
    """What a person approves: the step as the Incident's status says it now."""
    lines = [
        f"{step.id}  {step.action}  risk {step.risk}",
        f"    params:  {json.dumps(step.params, sort_keys=True)}",
    ]
    if step.dry_run is not None:
        said = f": {step.dry_run.message}" if step.dry_run.message else ""
        lines.append(f"    dry run: {'ok' if step.dry_run.ok else 'REFUSED'}{said}")
    if step.decision is not None:
        lines.append(f"    policy:  {step.decision}{': ' + step.reason if step.reason else ''}")
    if step.rationale:
        lines.append(f"    why:     {step.rationale}")
    # The rationale is the model's, the rest may echo it: nothing in them may redraw the screen.
    return "\n".join(printable(line) for line in lines)


def approve(
    incident: str,
    actions: Annotated[
        list[str] | None, typer.Argument(help="Action ids (default: all waiting).")
    ] = None,
    namespace: NamespaceOpt = "default",
    as_user: AsOpt = None,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
) -> None:
    """Approve an incident's proposed actions (shown first; asks on a terminal)."""
    _decide(ApprovalDecision.APPROVE, incident, actions, namespace, as_user, reason, yes)


def reject(
    incident: str,
    actions: Annotated[list[str] | None, typer.Argument(help="Action ids (default: all).")] = None,
    namespace: NamespaceOpt = "default",
    as_user: AsOpt = None,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
) -> None:
    """Reject an incident's proposed actions (shown first; asks on a terminal)."""
    _decide(ApprovalDecision.REJECT, incident, actions, namespace, as_user, reason, yes)
