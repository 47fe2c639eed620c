"""The Chaos loop's semantics on the real stack, through Chaos objects only: a fault injected,
seen on the subject, reverted on time with nothing left behind; deletion reverting at once;
one holder per target; a revert that cannot reach its target keeping the finalizer until it
can; bad input failing with a precise reason and nothing injected."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any, cast

import httpx
import redis

from ratelimiter.localstack.toxiproxy import Toxiproxy
from tests.fixtures.chaos_env import (
    SUBJECT,
    ChaosEnv,
    chaos_manifest,
    ts,
    wait_for,
)
from tests.fixtures.ratelimiter_subject import (
    repair,
    stack_healthy,
    subject_manifest,
)


def test_kill_node_takes_the_member_down_and_the_revert_brings_it_back(
    chaos_env: ChaosEnv,
) -> None:
    env = chaos_env
    env.apply(chaos_manifest("kill-2", "kill_node", {"member": "rl-node-2"}, duration="12s"))
    st = env.wait_phase("kill-2", "Injected", timeout=30)
    assert [(t["name"], t["state"]) for t in st["targets"]] == [("rl-node-2", "Injected")]
    assert env.program("rl-node-2") == "STOPPED"
    assert env.program("rl-node-1") == env.program("rl-node-3") == "RUNNING"
    wait_for("rl-node-2 Down on the Subject", lambda: env.member("rl-node-2") == "Down", 30)
    # kubectl get shows what is hit and for how long.
    table = env.ns.kubectl("get", "chaos", "kill-2", check=True).stdout
    assert "rl-node-2" in table and "Injected" in table and "TIME LEFT" in table
    assert env.condition("kill-2", "AllInjected")["status"] == "True"
    assert env.condition("kill-2", "AllRecovered")["status"] == "False"

    # kubectl wait is how a script waits for the end (standard conditions).
    waited = env.ns.kubectl("wait", "--for=condition=AllRecovered", "chaos/kill-2", "--timeout=60s")
    assert waited.returncode == 0, waited.stderr
    st = env.status("kill-2")
    assert st["phase"] == "Recovered"
    # Reverted by itself at the end of its duration, within one tick.
    late = (ts(st["recoveredAt"]) - ts(st["endsAt"])).total_seconds()
    assert 0 <= late < 8, late
    assert [(t["name"], t["state"]) for t in st["targets"]] == [("rl-node-2", "Reverted")]
    assert env.program("rl-node-2") == "RUNNING"
    wait_for("rl-node-2 Up on the Subject", lambda: env.member("rl-node-2") == "Up", 30)

    st = env.settled("kill-2")
    # autonomy observe: nothing acted, so the revert is what brought the subject back.
    assert st["brokenAt"] and st["healthyAt"] and st["recoveredBy"] == "revert", st
    assert ts(st["injectedAt"]) < ts(st["brokenAt"]) < ts(st["healthyAt"])
    assert ts(st["healthyAt"]) >= ts(st["endsAt"])  # after the revert was due
    assert env.condition("kill-2", "SubjectRecovered")["status"] == "True"
    # The node_down incident the subject loop opened during the fault is linked to it.
    assert st["incidents"], st
    inc = env.get("incidents", st["incidents"][0]) or {}
    assert inc["status"]["chaos"] == "kill-2"
    assert ts(inc["status"]["faultAt"]) == ts(st["injectedAt"])
    reasons = wait_for(
        "the Chaos' Events",
        lambda: (
            r
            if {"Injected", "Recovered", "SubjectRecovered"} <= set(r := env.events("kill-2"))
            else None
        ),
        20,
    )
    assert reasons.index("Injected") < reasons.index("Recovered")


def test_counter_drift_is_in_redis_while_injected_and_nothing_is_left_after(
    chaos_env: ChaosEnv,
) -> None:
    env = chaos_env
    key = f"chaos-drift-{uuid.uuid4().hex[:6]}"
    r = redis.Redis.from_url(env.stack.urls.redis, decode_responses=True)
    log = f"rl:w:{key}"

    def ours() -> list[str]:
        return [m for m, _ in r.zscan_iter(log, match="aiops-chaos-counter_drift-*")]

    try:
        env.apply(
            chaos_manifest(
                "drift",
                "counter_drift",
                {"member": key},
                duration="6s",
                params={"entries": 7, "ahead_seconds": 600},
            )
        )
        st = env.wait_phase("drift", "Injected", timeout=30)
        assert [t["name"] for t in st["targets"]] == [key]
        assert len(ours()) == 7
        seconds, micros = r.time()
        now_us = int(seconds) * 1_000_000 + int(micros)
        entries = cast(list[tuple[str, float]], r.zrange(log, 0, -1, withscores=True))
        assert all(score > now_us for _, score in entries)  # dated ahead of Redis's clock
        env.wait_phase("drift", "Recovered", timeout=30)
        assert ours() == [] and r.exists(log) == 0  # nothing of the fault left in Redis
    finally:
        r.delete(log)
        r.close()


def test_deleting_a_chaos_mid_duration_reverts_it_at_once(chaos_env: ChaosEnv) -> None:
    env = chaos_env
    env.apply(chaos_manifest("kill-3", "kill_node", {"member": "rl-node-3"}, duration="10m"))
    env.wait_phase("kill-3", "Injected", timeout=30)
    assert env.program("rl-node-3") == "STOPPED"
    deleted = time.monotonic()
    env.delete("kill-3")
    wait_for("Chaos kill-3 gone", lambda: env.gone("kill-3"), 30)
    assert time.monotonic() - deleted < 15  # at once, not at the end of the ten minutes
    assert env.program("rl-node-3") == "RUNNING"
    wait_for("every node healthy", lambda: stack_healthy(env.stack), 30)


def test_a_second_chaos_on_a_held_member_waits_for_the_holder(chaos_env: ChaosEnv) -> None:
    env = chaos_env
    env.apply(chaos_manifest("first", "kill_node", {"member": "rl-node-1"}, duration="8s"))
    env.wait_phase("first", "Injected", timeout=30)
    env.apply(chaos_manifest("second", "kill_node", {"member": "rl-node-1"}, duration="3s"))
    wait_for("second waiting", lambda: env.status("second").get("waitingFor") == "first", 20)
    st = env.status("second")
    assert st["phase"] == "Pending" and not st.get("targets")
    assert "Chaos first holds kill_node on rl-node-1" in st["message"]
    assert env.condition("second", "AllInjected")["reason"] == "TargetHeld"
    assert "Waiting" in env.events("second")
    # Once the holder is reverted, the waiting one goes.
    first = env.wait_phase("first", "Recovered", timeout=30)
    second = env.wait_phase("second", "Injected", "Recovered", timeout=30)
    assert ts(second["injectedAt"]) >= ts(first["recoveredAt"])
    assert second.get("waitingFor") is None
    env.wait_phase("second", "Recovered", timeout=30)
    assert env.program("rl-node-1") == "RUNNING"


def test_a_revert_that_cannot_reach_its_target_keeps_the_finalizer_until_it_can(
    chaos_env: ChaosEnv,
) -> None:
    """The Subject reaches supervisord through a toxiproxy proxy of the test's own; disabling
    it makes the workload unreachable (connection refused) between injection and revert."""
    env = chaos_env
    urls = env.stack.urls
    tp = Toxiproxy(urls.toxiproxy, proxy=f"sup-{uuid.uuid4().hex[:6]}")
    port = int(urls.supervisor.rsplit(":", 1)[1])
    relay = tp._call(
        "POST",
        "/proxies",
        {
            "name": tp.proxy,
            "listen": "127.0.0.1:0",
            "upstream": f"127.0.0.1:{port}",
            "enabled": True,
        },
    )
    subject = "rl-relay"
    try:
        env.apply(
            subject_manifest(
                subject,
                env.stack,
                autonomy="observe",
                workload={
                    "kind": "supervisor",
                    "supervisor": {"url": f"http://{relay['listen']}/RPC2"},
                },
            )
        )
        wait_for("Subject rl-relay Healthy", lambda: env.healthy(subject), 60)
        env.apply(
            chaos_manifest(
                "cut", "kill_node", {"member": "rl-node-3"}, duration="4s", subject=subject
            )
        )
        env.wait_phase("cut", "Injected", timeout=30)
        assert env.program("rl-node-3") == "STOPPED"
        tp.set_enabled(False)
        wait_for(
            "the revert failing",
            lambda: env.condition("cut", "AllRecovered").get("reason") == "RevertFailed",
            30,
        )
        st = env.status("cut")
        assert st["phase"] == "Injected" and "retrying" in st["message"]
        assert "unreachable" in st["message"], st["message"]
        assert st["targets"][0]["state"] == "RevertFailed"
        assert "RevertFailed" in env.events("cut")

        env.delete("cut")
        time.sleep(3)  # long enough for the delete handler to have tried and failed
        obj = env.get("chaos", "cut")
        assert obj is not None and obj["metadata"].get("deletionTimestamp")
        assert obj["metadata"]["finalizers"]
        assert env.program("rl-node-3") == "STOPPED"  # still down: nothing pretended

        tp.set_enabled(True)
        wait_for("Chaos cut reverted and gone", lambda: env.gone("cut"), 90)
        assert env.program("rl-node-3") == "RUNNING"
    finally:
        tp.set_enabled(True)
        tp._call("DELETE", f"/proxies/{tp.proxy}")
        env.ns.kubectl("delete", "subject", subject, "--wait=true")
        repair(env.stack)


def snapshot(env: ChaosEnv) -> dict[str, Any]:
    return {
        "programs": {n: i["statename"] for n, i in env.stack.status().items()},
        "toxics": Toxiproxy(env.stack.urls.toxiproxy).state()["toxics"],
    }


def test_bad_input_fails_with_a_precise_reason_and_injects_nothing(
    chaos_env: ChaosEnv,
) -> None:
    env = chaos_env
    env.apply(subject_manifest("rl-paused", env.stack, autonomy="observe", paused=True))
    before = snapshot(env)
    cases = {
        "no-such-fault": (
            chaos_manifest("no-such-fault", "melt_cpu", {"member": "rl-node-1"}),
            "UnknownFault",
            "a ratelimiter subject has no fault melt_cpu (its faults: ",
        ),
        "bad-params": (
            chaos_manifest(
                "bad-params", "redis_latency", params={"latency_ms": 100, "colour": "red"}
            ),
            "InvalidParams",
            "redis_latency has no parameter(s) colour",
        ),
        "bad-value": (
            chaos_manifest("bad-value", "redis_latency", params={"latency_ms": -5}),
            "InvalidParams",
            "latency_ms: Input should be greater than or equal to 1",
        ),
        "no-member": (
            chaos_manifest("no-member", "kill_node", {"member": "rl-node-9"}),
            "TargetNotFound",
            "Subject rl has no member rl-node-9 (members: rl-node-1",
        ),
        "no-target": (
            chaos_manifest("no-target", "kill_node"),
            "NoTarget",
            "fault kill_node needs a target: a member",
        ),
        "key-by-selector": (
            chaos_manifest(
                "key-by-selector", "counter_drift", {"selector": {"matchLabels": {"app": "rl"}}}
            ),
            "BadTarget",
            "name the key in target.member",
        ),
        "selector-on-processes": (
            chaos_manifest(
                "selector-on-processes",
                "kill_node",
                {"selector": {"matchLabels": {"app": "rl"}}, "mode": "all"},
            ),
            "BadTarget",
            "this Subject's workload is not pods",
        ),
        "too-long": (
            chaos_manifest("too-long", "kill_node", {"member": "rl-node-1"}, duration="30m"),
            "DurationTooLong",
            "30m is over this operator's maximum of 10m",
        ),
        "no-subject": (
            chaos_manifest("no-subject", "kill_node", {"member": "rl-node-1"}, subject="nope"),
            "SubjectNotFound",
            "Subject nope does not exist",
        ),
        "paused": (
            chaos_manifest("paused", "kill_node", {"member": "rl-node-1"}, subject="rl-paused"),
            "SubjectPaused",
            "Subject rl-paused is paused",
        ),
    }
    env.apply(*(m for m, _, _ in cases.values()))
    try:
        for name, (_, reason, words) in cases.items():
            st = env.wait_phase(name, "Failed", timeout=30)
            assert words in st["message"], (name, st["message"])
            assert st["message"].startswith("nothing injected: ")
            assert not st.get("targets") and not st.get("injectedAt"), name
            assert env.condition(name, "AllInjected")["reason"] == reason, name
            wait_for(f"a Failed Event on {name}", lambda n=name: "Failed" in env.events(n), 20)
        assert snapshot(env) == before  # nothing was injected anywhere
    finally:
        env.ns.kubectl("delete", "chaos", *cases, "--wait=true")
        env.ns.kubectl("delete", "subject", "rl-paused", "--wait=true")


def test_the_global_switch_stops_new_faults(chaos_env: ChaosEnv) -> None:
    env = chaos_env
    switch = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aiops-switch"},
        "data": {"actions": "stopped"},
    }
    env.apply(switch)
    try:
        env.apply(chaos_manifest("switched", "kill_node", {"member": "rl-node-1"}))
        st = env.wait_phase("switched", "Failed", timeout=30)
        assert "actions are stopped operator-wide" in st["message"]
        assert env.condition("switched", "AllInjected")["reason"] == "ActionsStopped"
        assert env.program("rl-node-1") == "RUNNING"
    finally:
        env.ns.kubectl("delete", "configmap", "aiops-switch")
        env.ns.kubectl("delete", "chaos", "switched", "--wait=true")


def test_the_cli_runs_a_chaos_and_follows_it_to_the_end(
    chaos_env: ChaosEnv,
    tmp_path: Any,
) -> None:
    env = chaos_env
    manifest = tmp_path / "chaos.yaml"
    manifest.write_text(
        "apiVersion: aiops.dev/v1alpha1\nkind: Chaos\nmetadata:\n  name: cli-kill\n"
        "spec:\n  subject: rl\n  fault: kill_node\n  target:\n    member: rl-node-1\n"
        "  duration: 10s\n"
    )
    cli = [sys.executable, "-m", "aiops.cli.main", "chaos"]
    run = subprocess.run(
        [*cli, "run", str(manifest), "-n", env.ns.namespace, "--wait"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env.ns.cluster.env,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"chaos {env.ns.namespace}/cli-kill created"
    # The live line (one line per change when not on a terminal): phase, time left, health.
    assert any(
        "| Injected |" in ln and "left" in ln and f"subject {SUBJECT}" in ln for ln in lines
    ), run.stdout
    assert any("| Recovered |" in ln for ln in lines), run.stdout
    assert "cli-kill: Recovered: kill_node on rl-node-1: injected" in run.stdout
    assert "TTD" in run.stdout  # the node_down incident it opened, measured from injection
    listed = subprocess.run(
        [*cli, "list", "-n", env.ns.namespace],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env.ns.cluster.env,
    )
    assert "cli-kill" in listed.stdout and "Recovered" in listed.stdout
    stopped = subprocess.run(
        [*cli, "stop", "cli-kill", "-n", env.ns.namespace],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env=env.ns.cluster.env,
    )
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "reverted and gone" in stopped.stdout
    assert httpx.get(f"{env.stack.urls.nodes['rl-node-1']}/health", timeout=5).status_code == 200


def test_a_selector_picks_among_the_subjects_pods_one_at_random_or_all(
    chaos_env: ChaosEnv,
) -> None:
    """A pods workload on the simulated nodes: pods named like the rate limiter's nodes (the
    plugin's kill_node checks the name), a selector choosing among them, and the kill instant
    (the pod deleted: its controller would replace it; nothing to revert)."""
    env = chaos_env

    def pod(name: str, app: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": app, "tier": "x"}},
            "spec": {"containers": [{"name": "rl", "image": "example.invalid/rl:1"}]},
        }

    def alive() -> set[str]:
        out = env.ns.kubectl(
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{'\\n'}{end}",
            check=True,
        ).stdout
        return {ln.split()[0] for ln in out.splitlines() if len(ln.split()) == 1}

    subject = "rl-pods"
    mine = {"rl-node-1", "rl-node-2", "rl-node-3"}
    env.apply(*(pod(n, "rlpods") for n in sorted(mine)), pod("stray", "other"))
    env.apply(
        subject_manifest(
            subject,
            env.stack,
            autonomy="observe",
            workload={"kind": "pods", "selector": {"matchLabels": {"app": "rlpods"}}},
        )
    )
    try:
        wait_for("the pods listed", lambda: alive() >= {*mine, "stray"}, 30)
        tier = {"selector": {"matchLabels": {"tier": "x"}}}
        env.apply(chaos_manifest("one", "kill_node", {**tier, "mode": "one"}, subject=subject))
        st = env.wait_phase("one", "Recovered", "Failed", timeout=30)
        assert st["phase"] == "Recovered", st.get("message")
        [target] = st["targets"]
        assert target["name"] in mine and target["instant"] and target["state"] == "Reverted"
        assert st["recoveredAt"] == st["injectedAt"]
        wait_for(f"pod {target['name']} deleted", lambda: target["name"] not in alive(), 30)
        assert alive() == {*mine, "stray"} - {target["name"]}

        env.apply(chaos_manifest("all", "kill_node", {**tier, "mode": "all"}, subject=subject))
        st = env.wait_phase("all", "Recovered", "Failed", timeout=30)
        assert st["phase"] == "Recovered", st.get("message")
        assert {t["name"] for t in st["targets"]} == mine - {target["name"]}
        wait_for("the subject's pods deleted", lambda: alive() == {"stray"}, 30)

        env.apply(chaos_manifest("none", "kill_node", tier, subject=subject))
        st = env.wait_phase("none", "Failed", timeout=30)
        assert "no pod of the subject matches app=rlpods,tier=x" in st["message"]
        assert alive() == {"stray"}  # never the pods of another workload
    finally:
        env.ns.kubectl("delete", "chaos", "one", "all", "none", "--wait=true")
        env.ns.kubectl("delete", "subject", subject, "--wait=true")
        env.ns.kubectl("delete", "pods", "--all", "--wait=false")
