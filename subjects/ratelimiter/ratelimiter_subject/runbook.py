"""What a careful rate limiter SRE does for each invariant. Steps are only the ones safe to take
without a person reading the evidence first; where the fix is someone else's writer, a Redis
to repair, or a limit to choose, the runbook diagnoses and leaves the remedy to a person (the
incident escalates)."""

from __future__ import annotations

from aiops.subjects.contract import RunbookEntry, RunbookStep
from ratelimiter_subject.actions import RESET_COUNTER, RESTART_NODE
from ratelimiter_subject.invariants import (
    COUNTER_DRIFT,
    GHOST_ALLOWING,
    HIGH_LATENCY,
    NODE_DOWN,
    OVER_LIMIT,
    REDIS_DISCONNECTED,
)

RUNBOOK: tuple[RunbookEntry, ...] = (
    RunbookEntry(
        invariant=NODE_DOWN,
        diagnosis="The node does not serve: its /health fails (refused, timed out, or its "
        "address answers as another node). Its clients fail over to the other nodes, which "
        "take its load; the limits stay exact, since every node counts in the same Redis.",
        likely_causes=[
            "the process crashed or was killed (OOM, a deploy, a lost host)",
            "the process hangs (event loop blocked) and stopped answering",
            "the pod was rescheduled and came back under another id; the old id stays Down "
            "in the registry until someone forgets it",
        ],
        steps=[
            RunbookStep(
                action=RESTART_NODE,
                params={"node": "{entity}"},
                rationale="a crashed or hung node usually serves again after a restart; "
                "refused while another node is down",
            ),
        ],
    ),
    RunbookEntry(
        invariant=REDIS_DISCONNECTED,
        diagnosis="The node serves but cannot reach Redis, so it answers every check with "
        "503. When every node reports it (entity 'redis'), Redis itself or the network to it "
        "is down and no node can help; when one node does, that node's connections are.",
        likely_causes=[
            "Redis is down, restarting, or refusing writes (maxmemory with noeviction)",
            "the network path to Redis is partitioned (a proxy, a NetworkPolicy, DNS)",
            "one node's connection pool is stuck on dead connections",
        ],
        steps=[
            RunbookStep(
                action=RESTART_NODE,
                params={"node": "{entity}"},
                rationale="a node alone in failing to reach Redis gets fresh connections on "
                "restart; for 'redis' (every node failing) the precondition refuses it and the "
                "incident escalates: Redis needs a person",
            ),
        ],
    ),
    RunbookEntry(
        invariant=HIGH_LATENCY,
        diagnosis="Checks take long to answer: clients wait on the limiter before every "
        "request. Every node slow at once points at what they share (Redis, its network); "
        "one node slow points at that node.",
        likely_causes=[
            "Redis is slow: a long-running command, persistence forks, a saturated CPU",
            "network latency between the nodes and Redis",
            "one node's host is starved of CPU",
        ],
    ),
    RunbookEntry(
        invariant=COUNTER_DRIFT,
        diagnosis="The key's log holds entries dated after Redis's clock: they are counted "
        "(the key is refused early) though no request made them.",
        likely_causes=[
            "Redis's clock stepped back (a failover to a replica running behind, an NTP step)",
            "a snapshot restored from a host whose clock ran ahead",
            "a tool writing into the logs by hand",
        ],
        steps=[
            RunbookStep(
                action=RESET_COUNTER,
                params={"key": "{entity}"},
                rationale="forgetting the key's log drops the entries no request made; its "
                "clients get one full window again, which is what they were owed",
            ),
        ],
    ),
    RunbookEntry(
        invariant=OVER_LIMIT,
        diagnosis="The key's log holds more admissions in its window than its limit: the "
        "check script never admits past the limit, so something wrote them around it. "
        "Resetting the key would only grant it more; the writer has to be found.",
        likely_causes=[
            "a client or an old service version writing the logs directly",
            "two logs merged into one (a migration, a restore into a live Redis)",
            "an admin tool replaying requests",
        ],
    ),
    RunbookEntry(
        invariant=GHOST_ALLOWING,
        diagnosis="A limit is on record for the key in a form the check script skips, so "
        "the key runs on the default limit and is let through although its own limit is "
        "exhausted: the per-key limit is stored but not enforced.",
        likely_causes=[
            "a tool or script wrote the limits hash in its own format (JSON, 'n/window')",
            "a hand edit in redis-cli",
            "a migration from another version of the limiter",
        ],
    ),
)
