"""The whole loop through a Chaos: counter drift injected → the subject loop opens an Incident
linked to the Chaos (faultAt = the Chaos' injectedAt) → the runbook resets the counter →
Resolved → the Chaos records that the operator brought the subject back, before the revert.
TTD and TTR are computed from those fields (hack/bench/chaos_ttr.py measures them N times)."""

from __future__ import annotations

import uuid

import redis

from tests.fixtures.chaos_env import ChaosEnv, chaos_manifest, ts, wait_for


def test_counter_drift_chaos_is_fixed_by_the_operator_and_timed_from_injection(
    fixing_env: ChaosEnv,
) -> None:
    env = fixing_env
    key = f"chaos-loop-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(env.stack.urls.redis, decode_responses=True)
    try:
        env.apply(
            chaos_manifest(
                "drift-loop",
                "counter_drift",
                {"member": key},
                duration="25s",
                params={"entries": 12},
            )
        )
        chaos = env.wait_phase("drift-loop", "Injected", timeout=30)
        injected = ts(chaos["injectedAt"])
        (name,) = wait_for(
            "an Incident linked to the Chaos", lambda: env.status("drift-loop").get("incidents"), 60
        )
        wait_for(
            f"{name} Resolved or Escalated",
            lambda: (
                (env.get("incidents", name) or {}).get("status", {}).get("phase")
                in ("Resolved", "Escalated")
            ),
            90,
        )
        inc = env.get("incidents", name) or {}
        st = inc["status"]
        assert st["phase"] == "Resolved", st.get("escalationReason")
        assert inc["spec"]["invariant"] == "counter_drift" and inc["spec"]["entity"] == key
        assert st["chaos"] == "drift-loop"
        assert inc["metadata"]["labels"]["aiops.dev/chaos"] == "drift-loop"
        assert ts(st["faultAt"]) == injected
        ttd = (ts(st["detectedAt"]) - injected).total_seconds()
        ttr = (ts(st["resolvedAt"]) - injected).total_seconds()
        assert 0 < ttd < ttr, (ttd, ttr)
        [action] = [a for a in st["executedActions"] if a["result"] == "Succeeded"]
        assert action["action"] == "reset_counter"

        chaos = env.settled("drift-loop", timeout=90)
        assert chaos["phase"] == "Recovered"
        assert chaos["recoveredBy"] == "operator" and chaos["incident"] == name, chaos
        # Healed by the operator's action, well before the revert at the end of the duration.
        assert ts(chaos["brokenAt"]) <= ts(chaos["healthyAt"]) < ts(chaos["recoveredAt"])
        assert ts(action["finishedAt"]) <= ts(chaos["healthyAt"])
        cond = env.condition("drift-loop", "SubjectRecovered")
        assert (cond["status"], cond["reason"]) == ("True", "Operator")
        assert f"by the operator (Incident {name})" in chaos["message"]
        # The revert found nothing left to remove, and said so; Redis holds none of it.
        assert "removed 0 entries" in chaos["targets"][0]["message"]
        assert [m for m, _ in r.zscan_iter(f"rl:w:{key}", match="aiops-chaos-*")] == []
        print(f"TTD {ttd:.2f} s, TTR {ttr:.2f} s")
    finally:
        r.delete(f"rl:w:{key}")
        r.close()
