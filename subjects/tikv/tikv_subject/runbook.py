"""What a careful TiKV SRE does for each invariant. Steps are only the ones safe to take
without a human reading the evidence first; where the fix is capacity or configuration, the
runbook diagnoses and leaves the remedy to a person (the incident escalates)."""

from __future__ import annotations

from aiops.subjects.contract import RunbookEntry, RunbookStep
from tikv_subject.actions import EVICT_LEADER, REMOVE_EVICT_LEADER, RESTART_STORE
from tikv_subject.invariants import (
    EVICT_LEADER_LEFTOVER,
    HIGH_LATENCY,
    LEADER_IMBALANCE,
    LOW_DISK_SPACE,
    METRICS_MISSING,
    NO_LIVE_STORE,
    REGION_HEALTH,
    STORE_DOWN,
)

RUNBOOK: tuple[RunbookEntry, ...] = (
    RunbookEntry(
        invariant=STORE_DOWN,
        diagnosis="PD has had no heartbeat from the store: its TiKV process is gone, hung, "
        "or cut off from PD. Its regions elect leaders elsewhere; PD starts replacing its "
        "replicas after max-store-down-time (30 min by default).",
        likely_causes=[
            "the TiKV pod crashed or was OOM-killed and is crash-looping",
            "the node or its disk failed",
            "a network partition between the store and PD",
        ],
        steps=[
            RunbookStep(
                action=RESTART_STORE,
                params={"store": "{entity}"},
                rationale="a crashed or hung TiKV usually comes back on restart; refused while "
                "another store is down or when a region would lose its quorum",
            ),
        ],
    ),
    RunbookEntry(
        invariant=NO_LIVE_STORE,
        diagnosis="PD knows no store that heartbeats: every store is down, being removed and "
        "dead, or PD lists none at all. Nothing serves reads or writes.",
        likely_causes=[
            "every TiKV pod is gone or crash-looping (a bad image, config or volume)",
            "the stores cannot reach PD (network policy, DNS, PD's address changed)",
            "PD's data was lost or this PD belongs to another cluster (an empty store list)",
        ],
    ),
    RunbookEntry(
        invariant=HIGH_LATENCY,
        diagnosis="The store handles gRPC requests slowly; the leaders it holds pass the "
        "delay to every client of their regions.",
        likely_causes=[
            "a slow or saturated disk (compaction, write stalls)",
            "hot regions whose leaders sit on this store",
            "CPU starvation of the TiKV pod",
        ],
        steps=[
            RunbookStep(
                action=EVICT_LEADER,
                params={"store": "{entity}"},
                rationale="moving leaders off the slow store takes it out of the request path "
                "while it recovers; undo (or the eviction's time running out) brings them back",
            ),
        ],
    ),
    RunbookEntry(
        invariant=LOW_DISK_SPACE,
        diagnosis="The store is running out of disk; TiKV stops accepting writes when it "
        "is nearly full, and PD moves regions away once low-space-ratio is crossed.",
        likely_causes=[
            "data growth beyond the provisioned volume",
            "a backlog of compaction or of old MVCC versions (GC stuck)",
            "regions piling up on this store after another store went down",
        ],
    ),
    RunbookEntry(
        invariant=REGION_HEALTH,
        diagnosis="PD's region checks list regions with a missing, down or pending peer: "
        "their replication is degraded and one more failure may cost a quorum.",
        likely_causes=[
            "a store is down (down-peer; see store_down)",
            "a store is slow to apply snapshots or logs (pending-peer)",
            "PD has not yet rebuilt replicas of a removed or failed store (miss-peer)",
        ],
    ),
    RunbookEntry(
        invariant=LEADER_IMBALANCE,
        diagnosis="Leaders are spread unevenly, so some stores serve far more requests than "
        "others.",
        likely_causes=[
            "balance-leader-scheduler removed or paused in PD",
            "a store restarted recently and is still getting leaders back",
            "leader weights set unevenly on purpose or by mistake",
        ],
    ),
    RunbookEntry(
        invariant=EVICT_LEADER_LEFTOVER,
        diagnosis="An evict-leader scheduler is in PD that no running action owns: it keeps "
        "the store's leaders away until someone removes it.",
        likely_causes=[
            "an operator process stopped between adding and removing it",
            "someone evicted leaders by hand (pd-ctl) and forgot it",
            "an evict_leader action's ownership ran out without an undo",
        ],
        steps=[
            RunbookStep(
                action=REMOVE_EVICT_LEADER,
                params={"store": "{entity}"},
                rationale="lets PD balance leaders back onto the store",
            ),
        ],
    ),
    RunbookEntry(
        invariant=METRICS_MISSING,
        diagnosis="Prometheus has no successful scrape of the store's status port, so its "
        "latency is unknown (not fine).",
        likely_causes=[
            "the scrape targets TiKV's gRPC port 20160 instead of the status port 20180",
            "the pod lacks the prometheus.io scrape annotations, or the job is not named like "
            "the config's prometheusJob",
            "the status server is down while the store still heartbeats to PD",
        ],
    ),
)
