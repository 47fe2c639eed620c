"""Several replicas, exactly one active: kopf's peering, joined at start.

`aiops operator run --peering NAME` puts a `PeeringPlan` in kopf's memo. Before kopf starts
watching (startup handlers run first), `join` makes sure the peering object exists (kopf
never creates it, and without it a replica stays paused forever), and writes this replica's
first keep-alive into it with its priority. kopf then keeps it alive, and pauses every
replica that sees a live one of higher priority: the paused one runs no handler and no
daemon until the active one's keep-alive expires, then takes over from what status says.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client as k8s

from aiops.api.peering import CLUSTER, NAMESPACED, PEERING_GROUP
from aiops.kube import is_conflict, is_not_found, load_api_client
from aiops.loops.startup import operator_settings

LIFETIME = 15
"""Seconds a replica's keep-alive stays valid. kopf renews it 5-10 s before it expires (here
every 5-10 s), and a standby takes over once the active one's last keep-alive is older than
this: a SIGKILLed replica is replaced within LIFETIME plus a re-list, inside the 30 s we
promise. The margin against an active replica taken for dead after one slow keep-alive (both
would run for a moment) is those 5-10 s whatever the lifetime, so a shorter one costs only
keep-alive writes (one per replica and namespace every 5-10 s); kopf's default, 60 s, would
miss the promise."""


@dataclass(frozen=True)
class PeeringPlan:
    """What `--peering` asked for: the peering object's name, where, and who this is."""

    name: str
    identity: str
    namespaces: tuple[str, ...] = ()
    clusterwide: bool = False


def priority_now() -> int:
    """The earlier a replica joins, the higher its priority (kopf: the highest one is active).
    So a replica that starts while another is active stays its standby and never takes the
    work from it; a restart of the standby or a rollout does not move the work around. The
    random sub-millisecond part keeps two replicas joining in the same millisecond apart (the
    same priority would pause both)."""
    return -(int(time.time() * 1000) * 1000 + random.randrange(1000))


def keepalive(priority: int, lifetime: int = LIFETIME) -> dict[str, Any]:
    """An entry as kopf writes it under status.<identity>."""
    return {
        "priority": priority,
        "lifetime": lifetime,
        "lastseen": datetime.now(UTC).isoformat(),
    }


def register(api: k8s.ApiClient, plan: PeeringPlan, priority: int) -> None:
    """Create the peering object(s) if absent and write this replica's keep-alive; a
    kopf.PermanentError (the operator stops at start with the reason) when it cannot."""
    custom = k8s.CustomObjectsApi(api)
    kind, plural, _ = CLUSTER if plan.clusterwide else NAMESPACED
    obj = {"apiVersion": f"{PEERING_GROUP}/v1", "kind": kind, "metadata": {"name": plan.name}}
    body = {"status": {plan.identity: keepalive(priority)}}
    for ns in [None] if plan.clusterwide else plan.namespaces:
        try:
            try:
                if ns is None:
                    custom.create_cluster_custom_object(PEERING_GROUP, "v1", plural, obj)
                else:
                    custom.create_namespaced_custom_object(PEERING_GROUP, "v1", ns, plural, obj)
            except k8s.ApiException as err:
                if not is_conflict(err):
                    raise  # a conflict: another replica (or the chart) made it already
            if ns is None:
                custom.patch_cluster_custom_object(PEERING_GROUP, "v1", plural, plan.name, body)
            else:
                custom.patch_namespaced_custom_object(
                    PEERING_GROUP, "v1", ns, plural, plan.name, body
                )
        except k8s.ApiException as err:
            place = "cluster-wide" if ns is None else f"in namespace {ns}"
            if is_not_found(err):
                why = (
                    f"the {kind} resource is not installed (kubectl apply -f "
                    f"crds/kopf.dev_{plural}.yaml; the chart installs it)"
                )
            elif err.status == 403:
                why = f"the operator may not create or patch {plural} {place} (RBAC)"
            else:
                why = f"{err.status} {err.reason}"
            raise kopf.PermanentError(f"cannot join peering {plan.name!r} {place}: {why}") from None


@kopf.on.startup()
async def join(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    plan = getattr(memo, "peering", None)
    if not isinstance(plan, PeeringPlan):
        return  # standalone
    settings.peering.lifetime = LIFETIME
    settings.peering.stealth = True  # a keep-alive every 5-10 s is no news for the log
    settings.peering.priority = priority_now()
    api = load_api_client(operator_settings(memo).kubeconfig)
    await asyncio.to_thread(register, api, plan, settings.peering.priority)
