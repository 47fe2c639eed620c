"""`aiops eval run` on the real stack: a one-trial smoke campaign through the CLI; a fault no
invariant notices is a timeout, never a success; an earlier trial's Incident is never taken
for a later one's; a fault that heals by itself is self-healed; a model's fix that ran and was
undone is a wrong fix; and a run SIGKILLed mid-trial resumes without re-running what it
recorded and without leaving its fault injected.

Faults are real (entries dated ahead in Redis, a toxic in toxiproxy); outcomes are read back
from the database as a report would."""

from __future__ import annotations

import signal
import uuid
from datetime import UTC
from pathlib import Path

import pytest

from aiops.eval.campaign import CampaignError
from aiops.eval.records import TrialOutcome
from aiops.eval.store import Store
from ratelimiter.localstack.toxiproxy import Toxiproxy
from tests.fixtures.eval_env import SUBJECT, EvalEnv
from tests.fixtures.ratelimiter_subject import wait_for
from tests.fixtures.scripted_anthropic import FAKE_KEY, reply, tool_use

TIMINGS = "cooldown: 0s\ntimeouts: {healthy: 40s, detect: 15s, trial: 45s}\n"


def drift(name: str, key: str, duration: str = "60s", **params: int) -> str:
    extra = "".join(f", {k}: {v}" for k, v in params.items())
    return (
        f"  - name: {name}\n    fault: counter_drift\n    target: {{member: {key}}}\n"
        f"    params: {{entries: 12{extra}}}\n    duration: {duration}\n"
    )


def test_a_one_trial_campaign_from_the_command_line(eval_env: EvalEnv, tmp_path: Path) -> None:
    env = eval_env
    key = f"eval-smoke-{uuid.uuid4().hex[:6]}"
    campaign = env.campaign(
        "smoke",
        "faults:\n"
        + drift("drift", key)
        + "variants:\n  - name: runbook\n    autonomy: execute\ntrials: 1\n"
        + TIMINGS,
    )
    db = tmp_path / "eval.sqlite"
    proc = env.cli("run", str(campaign), "--db", str(db), "--audit-dir", str(env.audit_dir))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "trial 1/1" in out and "resolved" in out, out
    run = Store(db).latest()
    assert (
        run.finished_at is not None
        and run.planned == 1
        and run.campaign_text.startswith("name: smoke")
    )
    [t] = Store(db).trials(run.id)
    assert t.outcome == TrialOutcome.RESOLVED, t.detail
    assert t.ttd_s is not None and t.ttr_s is not None and 0 < t.ttd_s < t.ttr_s
    assert t.healthy_s is not None and t.recovered_by == "operator"
    assert [(a.action, a.risk, a.result) for a in t.actions] == [
        ("reset_counter", "low", "Succeeded")
    ]
    assert t.incident and t.incident_uid and t.audit_seq is not None and t.audit_hash
    assert t.tool_calls == 0 and t.model_turns == 0  # the runbook calls no tools
    assert t.started_at.tzinfo == UTC and t.injected_at is not None
    assert t.started_at < t.injected_at < t.finished_at
    assert env.chaos_of(run.id) == []  # reverted and gone


def test_timeout_stale_incident_and_self_healing(eval_env: EvalEnv, tmp_path: Path) -> None:
    """Three baseline trials in order: drift that stays (an Incident opens and escalates),
    a fault nothing notices (bandwidth throttled to more than it ever uses), and drift dated
    2 s ahead that is gone before its 4 s hold."""
    env = eval_env
    key = f"eval-stale-{uuid.uuid4().hex[:6]}"
    campaign = env.campaign(
        "baseline",
        "faults:\n"
        + drift("drift", key, duration="8s")
        + "  - name: unnoticed\n    fault: redis_bandwidth\n"
        + "    params: {kilobytes_per_second: 10000000}\n    duration: 5s\n"
        + drift("fleeting", f"{key}-2", duration="8s", ahead_seconds=2)
        + "variants:\n  - name: baseline\n    baseline: true\ntrials: 1\n"
        + TIMINGS.replace("detect: 15s", "detect: 12s"),
    )
    db = tmp_path / "eval.sqlite"
    run = env.run(campaign, db)
    stale, unnoticed, fleeting = env.trials(db, run.id)

    assert stale.outcome == TrialOutcome.ESCALATED, stale.detail
    assert stale.incident is not None and stale.recovered_by == "revert"
    assert stale.baseline and stale.actions == []

    # The drift trial's Incident exists, on the same Subject, newer than any other: a
    # harness that took "the newest incident" would have counted it here.
    assert env.incident(stale.incident) is not None
    assert unnoticed.outcome == TrialOutcome.TIMEOUT, unnoticed.detail
    assert unnoticed.incident is None and unnoticed.ttd_s is None
    assert "never detected" in unnoticed.detail

    assert fleeting.outcome == TrialOutcome.SELF_HEALED, fleeting.detail
    assert fleeting.incident is None and fleeting.recovered_by == "self"
    assert env.chaos_of(run.id) == []


def test_a_fix_that_ran_and_was_undone_is_a_wrong_fix(eval_env: EvalEnv, tmp_path: Path) -> None:
    """The model raises the drifted key's limit (it runs once the run approves it), the drift
    stays, verification fails, the change is undone: a wrong fix, with the model's usage."""
    env = eval_env
    key = f"eval-wrong-{uuid.uuid4().hex[:6]}"
    env.model.script(
        [
            reply(
                tool_use(
                    "propose_action",
                    {
                        "action": "update_limit",
                        "params": {"key": key, "limit": 500, "window_ms": 1000},
                        "rationale": "the key is refused early: give it more room",
                    },
                )
            ),
            reply(tool_use("resolve", {"summary": f"{key} needs a higher limit"})),
        ]
    )
    campaign = env.campaign(
        "wrongfix",
        "faults:\n"
        + drift("drift", key, duration="90s")  # held until the trial ends (a loaded machine)
        + "variants:\n  - name: claude\n    backend: anthropic\n    model: claude-test\n"
        + "    promptAddendum: Prefer raising a limit.\n"
        + "    autonomy: execute\n    approve: true\ntrials: 1\n"
        + TIMINGS.replace("trial: 45s", "trial: 80s"),
    )
    db = tmp_path / "eval.sqlite"
    # The run's key (the operator's own has none): it goes into a Secret the Subject names.
    run = env.run(campaign, db, api_key=FAKE_KEY)
    [t] = env.trials(db, run.id)
    inc = env.incident(t.incident or "") or {}
    assert t.outcome == TrialOutcome.WRONG_FIX, (
        t.detail,
        inc.get("status", {}).get("timeline"),
        len(env.model.requests),
        env.model.remaining(),
    )
    assert [(a.action, a.risk, a.result, a.undone) for a in t.actions] == [
        ("update_limit", "medium", "Succeeded", True)
    ]
    assert t.approval_s > 0 and t.actions[0].approved_by
    assert t.model_turns == 2 and t.tokens_in > 0 and t.tokens_out > 0 and t.tool_calls == 2
    assert "undone" in t.detail
    # The variant reached the model: its model name, and its addendum after the rules.
    first = env.model.requests[0].body
    assert first["model"] == "claude-test"
    assert first["system"][-1] == {"type": "text", "text": "Prefer raising a limit."}


def test_a_killed_run_resumes_without_rerunning_or_leaving_a_fault(
    eval_env: EvalEnv, tmp_path: Path
) -> None:
    """Two trials of a fault nothing notices (a bandwidth toxic in toxiproxy, far above what
    the nodes use): the process is SIGKILLed while the second one's toxic is in place."""
    env = eval_env
    toxics = Toxiproxy(env.stack.urls.toxiproxy)

    def injected() -> list[str]:
        return [t["name"] for t in toxics.state().get("toxics", [])]

    campaign = env.campaign(
        "crash",
        "faults:\n  - name: unnoticed\n    fault: redis_bandwidth\n"
        + "    params: {kilobytes_per_second: 10000000}\n    duration: 60s\n"
        + "variants:\n  - name: runbook\n    autonomy: execute\ntrials: 2\n"
        + TIMINGS.replace("detect: 15s", "detect: 3s"),
    )
    db = tmp_path / "eval.sqlite"
    proc = env.cli("run", str(campaign), "--db", str(db))
    try:
        wait_for("the first trial recorded", lambda: env.recorded(db) == 1, timeout=90)
        run_id = Store(db).latest().id
        wait_for(
            "the second trial's fault injected",
            lambda: any((c.get("status") or {}).get("injectedAt") for c in env.chaos_of(run_id)),
            timeout=60,
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    [left] = env.chaos_of(run_id)  # the killed process could not revert it
    assert injected(), "the second trial's toxic is in place"
    [first] = Store(db).trials(run_id)

    resumed = env.cli("run", str(campaign), "--db", str(db), "--resume", run_id)
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    assert f"stopping Chaos {env.ns.namespace}/{left['metadata']['name']}" in out
    assert "1 of 2 trials recorded already" in out
    trials = Store(db).trials(run_id)
    assert [t.trial for t in trials] == [1, 2]
    assert trials[0] == first  # not run again
    assert trials[1].chaos != left["metadata"]["name"]  # run again, under a Chaos of its own
    assert [t.outcome for t in trials] == [TrialOutcome.TIMEOUT] * 2
    assert Store(db).run(run_id).finished_at is not None
    assert env.chaos_of(run_id) == [] and injected() == []


@pytest.mark.parametrize(
    ("faults", "subject", "expected"),
    [
        (
            "  - name: kil_node\n    target: {member: rl-node-1}\n",
            "rl",
            ":6: faults[0].name: unknown fault 'kil_node': the ratelimiter plugin of Subject",
        ),
        (
            "  - name: drift\n    fault: counter_drift\n    params: {entries: 0}\n"
            "    target: {member: k}\n",
            "rl",
            ":8: faults[0].params.entries: Input should be greater than or equal to 1",
        ),
        ("  - name: counter_drift\n", "rl", ":6: faults[0]: fault counter_drift needs a target"),
        (
            "  - name: kill_node\n    target: {member: rl-node-1}\n",
            "nope",
            ":4: subjects[0].name: no Subject",
        ),
    ],
    ids=["unknown-fault", "bad-params", "no-target", "no-subject"],
)
def test_what_the_cluster_refuses_fails_before_anything_is_injected(
    eval_env: EvalEnv, tmp_path: Path, faults: str, subject: str, expected: str
) -> None:
    env = eval_env
    campaign = env.campaign(
        "bad", "faults:\n" + faults + "variants:\n  - name: b\n    baseline: true\ntrials: 1\n"
    )
    campaign.write_text(
        campaign.read_text().replace(f"  - name: {SUBJECT}\n", f"  - name: {subject}\n")
    )
    db = tmp_path / "eval.sqlite"
    with pytest.raises(CampaignError) as err:
        env.run(campaign, db)
    assert str(err.value).startswith(f"{campaign}{expected}"), err.value
    assert Store(db).runs() == []  # no run was started
    assert env.api.list("chaos", env.ns.namespace) == []
