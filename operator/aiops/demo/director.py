"""The demo's story: ten chapters from a healthy baseline to a verified fix, each left when
what it shows has happened (and, on a terminal, when the person presses SPACE; with --auto,
after a short dwell). The director only reads the Store (what the sources saw) and acts
through the API server (the Chaos, the Subject, an Approval by `aiops approve`), the
subject's workload (the load generator) and nothing of the operator's internals.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from aiops.api import GROUP, VERSION
from aiops.cli.printable import printable
from aiops.demo.sources import Store
from aiops.demo.stories import Story
from aiops.loops.runtime import SWITCH
from aiops.vocabulary import (
    TERMINAL,
    ApprovalDecision,
    ChaosPhase,
    ConditionStatus,
    ConditionType,
    Health,
    MemberState,
    Outcome,
    Phase,
    Verdict,
)

CHAPTERS = (
    "baseline",
    "load",
    "countdown",
    "fault",
    "detection",
    "diagnosis",
    "approval",
    "remediation",
    "verification",
    "summary",
)
TITLES = {c: c.capitalize() for c in CHAPTERS} | {"baseline": "Healthy baseline"}
DEMO_LABEL = "aiops.dev/demo"

# Exit codes of `aiops demo`.
EXIT_RESOLVED, EXIT_NOT_RESOLVED, EXIT_QUIT = 0, 1, 130


@dataclass(frozen=True)
class Settings:
    namespace: str
    subject: str
    fault: str
    params: dict[str, Any]
    duration: str
    autonomy: str
    auto: bool
    dwell: float
    countdown: float
    timeout: float
    kubeconfig: str
    agent: str  # what the operator was started with: "anthropic" or "runbook"


def ts(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def seconds(later: Any, earlier: Any) -> float | None:
    a, b = ts(later), ts(earlier)
    return None if a is None or b is None else (a - b).total_seconds()


@dataclass
class Task:
    """Work the director handed to its worker thread (the screen never waits on I/O)."""

    future: Future[Any]
    label: str


@dataclass
class Director:
    settings: Settings
    store: Store
    api: client.ApiClient
    story: Story
    clock: Callable[[], float] = time.monotonic
    index: int = 0
    entered: float = 0.0
    started: float = 0.0
    tasks: dict[str, Task] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)  # chapter -> what it did
    skipped: dict[str, str] = field(default_factory=dict)  # chapter -> why
    chaos_name: str = ""
    chaos_spec: dict[str, Any] = field(default_factory=dict)
    injected_at: float | None = None
    decision: str = ""  # an ApprovalDecision, once sent
    ending: str = ""  # why the story ended early (the Chaos failed, a timeout, ...)
    quitting: bool = False
    exit_code: int | None = None  # set: the demo is over
    last_chaos: dict[str, Any] = field(default_factory=dict)  # as it was before deletion
    seen: set[str] = field(default_factory=set)  # events noted once
    log: list[str] = field(default_factory=list)  # chapters and notes, in order (plain output)
    asked: bool = False  # SPACE pressed in this chapter before it was ready

    def __post_init__(self) -> None:
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-worker")
        self.started = self.entered = self.clock()
        self._enter()

    # -- what the screen reads ---------------------------------------------------------------

    @property
    def chapter(self) -> str:
        return CHAPTERS[self.index]

    def subject(self) -> dict[str, Any]:
        return self.store.get("subjects", self.settings.subject) or {}

    def chaos(self) -> dict[str, Any]:
        return self.store.get("chaos", self.chaos_name) or self.last_chaos

    def incident(self) -> dict[str, Any] | None:
        """The first Incident linked to this run's Chaos (the subject loop links them)."""
        if not self.chaos_name:
            return None
        linked = set((self.chaos().get("status") or {}).get("incidents") or [])
        for inc in self.store.items("incidents"):
            if (inc.get("status") or {}).get("chaos") == self.chaos_name or inc["metadata"][
                "name"
            ] in linked:
                return inc
        return None

    def phase(self) -> str:
        inc = self.incident()
        return str(((inc or {}).get("status") or {}).get("phase") or "")

    def busy(self, label: str) -> bool:
        task = self.tasks.get(label)
        return task is not None and not task.future.done()

    def result(self, label: str) -> Any:
        """The task's result; None while it runs or when it failed (its error is a note)."""
        task = self.tasks.get(label)
        if task is None or not task.future.done() or task.future.exception() is not None:
            return None
        return task.future.result()

    def error(self, label: str) -> str | None:
        task = self.tasks.get(label)
        if task is None or not task.future.done():
            return None
        err = task.future.exception()
        return None if err is None else f"{type(err).__name__}: {err}"

    def times(self) -> tuple[float | None, float | None]:
        """TTD and TTR in seconds, from the Chaos' injectedAt (the Incident's faultAt)."""
        inc = self.incident()
        if inc is None:
            return None, None
        st = inc.get("status") or {}
        start = (self.chaos().get("status") or {}).get("injectedAt") or st.get("faultAt")
        resolved = st.get("resolvedAt") if st.get("phase") == Phase.RESOLVED else None
        return seconds(st.get("detectedAt"), start), seconds(resolved, start)

    def ready(self) -> tuple[bool, str]:
        """Whether what the chapter shows has happened; if not, what it waits for."""
        c = self.chapter
        phase = self.phase()
        if c == "baseline":
            if self.busy("prepare"):
                return False, "preparing a clean state"
            members = (self.subject().get("status") or {}).get("members") or []
            health = (self.subject().get("status") or {}).get("health")
            down = [m["name"] for m in members if m.get("state") != MemberState.UP]
            if health != Health.HEALTHY or down or not members:
                return False, f"the Subject to be Healthy (now {health or '?'}" + (
                    f", {', '.join(down)} not Up)" if down else ")"
                )
            return True, ""
        if c == "load":
            with self.store.lock:
                rate = self.store.gauges.get(self.story.rates()[0][0], 0.0)
            if self.story.subject_type == "ratelimiter" and rate <= 0:
                return False, "Prometheus to see the load"
            return True, ""
        if c == "countdown":
            left = self.settings.countdown - (self.clock() - self.entered)
            return left <= 0, f"{max(left, 0):.0f}"
        if c == "fault":
            st = self.chaos().get("status") or {}
            if st.get("phase") in (ChaosPhase.INJECTED, ChaosPhase.RECOVERED):
                return True, ""
            return False, f"the Chaos to be Injected (now {st.get('phase') or ChaosPhase.PENDING})"
        if c == "detection":
            return (self.incident() is not None), "the subject loop to open an Incident"
        if c == "diagnosis":
            st = (self.incident() or {}).get("status") or {}
            return bool(st.get("diagnosis")) or phase in TERMINAL, "the agent's diagnosis"
        if c == "approval":
            return (
                phase not in (Phase.AWAITING_APPROVAL, Phase.INVESTIGATING, Phase.OPEN, ""),
                "a decision: a approves, r rejects"
                if not self.decision
                else "the operator to apply the Approval",
            )
        if c == "remediation":
            st = (self.incident() or {}).get("status") or {}
            finished = any(
                a.get("result") not in (None, Outcome.RUNNING)
                for a in st.get("executedActions") or []
            )
            return finished or phase in (Phase.VERIFYING, *TERMINAL), "the action to finish"
        if c == "verification":
            return phase in TERMINAL, "the invariant to hold again"
        return not self.busy("finish"), "stopping the fault and the load"

    def applies(self, chapter: str) -> str | None:
        """None when the chapter is part of this run's story, else why it is skipped."""
        st = (self.incident() or {}).get("status") or {}
        phase = st.get("phase")
        steps = st.get("proposedActions") or []
        if chapter == "approval":
            if (
                any(
                    s.get("decision") == Verdict.AWAIT_APPROVAL or s.get("approvedBy")
                    for s in steps
                )
                or phase == Phase.AWAITING_APPROVAL
            ):
                return None
            if not steps:
                return "no action was proposed"
            if all(s.get("decision") == Verdict.REFUSED for s in steps):
                return "the policy refused every step"
            return f"autonomy {self.settings.autonomy}: the policy let the plan run unapproved"
        if chapter == "remediation":
            if st.get("executedActions") or phase == Phase.REMEDIATING:
                return None
            return "no action ran"
        if chapter == "verification" and phase == Phase.ESCALATED and not st.get("executedActions"):
            return "the incident escalated"
        return None

    # -- what moves the story --------------------------------------------------------------

    def tick(self, keys: list[str]) -> None:
        """One step of the story: handle keys, start the chapter's work, move on if due."""
        if self.exit_code is not None:
            return
        for key in keys:
            if key in ("q", "ctrl-c"):
                self.quit()
        if self.quitting:
            if not self.busy("finish"):
                self.exit_code = EXIT_QUIT if self.chapter != "summary" else self._verdict()
            return
        ok, _ = self.ready()
        c = self.chapter
        if c == "baseline" and self.error("prepare"):
            self._end(f"could not prepare a clean state: {self.error('prepare')}")
            return
        if c == "fault" and self.error("inject"):
            self._end(f"the Chaos could not be created: {self.error('inject')}")
            return
        if c == "approval":
            self._approval_keys(keys)
        self._events()
        self._check_ending()
        if self.chapter != c:
            return
        dwell = self.clock() - self.entered >= self.settings.dwell
        if c == "summary":
            if ok and (
                (self.settings.auto and dwell)
                or any(k in ("space", "enter", "right") for k in keys)
            ):
                self.exit_code = self._verdict()
            return
        # A SPACE pressed before the chapter is ready is kept: the story moves on as soon as
        # what the chapter shows has happened.
        self.asked = self.asked or any(k in ("space", "enter", "right") for k in keys)
        advance = c == "countdown" or (self.settings.auto and dwell) or self.asked
        if ok and advance:
            self.next()

    def next(self) -> None:
        self.index += 1
        while self.chapter != "summary" and (why := self.applies(self.chapter)) is not None:
            self.skipped[self.chapter] = why
            self.log.append(f"-- {TITLES[self.chapter]} skipped: {why}")
            self.index += 1
        self.entered = self.clock()
        self.asked = False
        self._enter()

    def quit(self) -> None:
        """q, Ctrl-C: revert the fault (delete the Chaos), stop the load, then leave."""
        if self.quitting:
            return
        self.quitting = True
        if self.chapter != "summary":
            self.ending = f"quit during the {self.chapter} chapter"
        if "finish" not in self.tasks:
            self._submit("finish", self._finish)

    def abandon(self, wait: float = 120) -> None:
        """The screen is gone (the terminal closed, an error): still leave nothing behind.
        Waits for the cleanup, started here if it was not already."""
        if "finish" not in self.tasks:
            self._submit("finish", self._finish)
        with contextlib.suppress(Exception):  # said by the error that brought us here
            self.tasks["finish"].future.result(timeout=wait)

    def _end(self, why: str) -> None:
        self.ending = printable(why)
        self.index = CHAPTERS.index("summary") - 1
        self.next()

    def _check_ending(self) -> None:
        """The story ends early when the fault failed, was never detected, or took too long."""
        if self.chapter in ("baseline", "load", "countdown", "summary") or self.ending:
            return
        st = self.chaos().get("status") or {}
        if st.get("phase") == ChaosPhase.FAILED:
            self._end(f"the fault could not be injected: {st.get('message') or 'Failed'}")
            return
        recovered = any(
            c.get("type") == ConditionType.SUBJECT_RECOVERED
            and c.get("status") in (ConditionStatus.TRUE, ConditionStatus.FALSE)
            for c in st.get("conditions") or []
        )
        if self.incident() is None and st.get("phase") == ChaosPhase.RECOVERED and recovered:
            self._end("the fault ended and no invariant saw it: no incident was opened")
            return
        if self.injected_at is not None and self.clock() - self.injected_at > self.settings.timeout:
            self._end(f"timed out {self.settings.timeout:.0f} s after the fault")

    def _events(self) -> None:
        """Notes of what the system did, once each: the fault made, the Incident opened, the
        Incident closed (the plain output prints them; the screen shows them live)."""
        st = self.chaos().get("status") or {}
        if st.get("injectedAt") and "injected" not in self.seen:
            self.seen.add("injected")
            targets = ", ".join(t.get("name", "") for t in st.get("targets") or [])
            self._note(
                "fault",
                f"Chaos {self.chaos_name} Injected at {st['injectedAt']}"
                + (f" into {targets}" if targets else ""),
            )
        inc = self.incident()
        if inc is not None and "detected" not in self.seen:
            self.seen.add("detected")
            ttd, _ = self.times()
            spec = inc.get("spec") or {}
            self._note(
                "detection",
                f"DETECTED: incident {inc['metadata']['name']} "
                f"({spec.get('invariant')} for {spec.get('entity') or 'the subject'})"
                + (f", TTD {ttd:.2f} s" if ttd is not None else ""),
            )
        phase = self.phase()
        if phase in TERMINAL and "closed" not in self.seen:
            self.seen.add("closed")
            _, ttr = self.times()
            self._note("verification", f"{phase}" + (f", TTR {ttr:.2f} s" if ttr else ""))

    def _approval_keys(self, keys: list[str]) -> None:
        if self.decision or self.phase() != Phase.AWAITING_APPROVAL:
            return
        wanted = next((k for k in keys if k in ("a", "r")), None)
        if (
            wanted is None
            and self.settings.auto
            and self.clock() - self.entered >= self.settings.dwell
        ):
            wanted = "a"
        if wanted is not None:
            self.decision = ApprovalDecision.APPROVE if wanted == "a" else ApprovalDecision.REJECT
            inc = self.incident()
            assert inc is not None
            self._submit("decide", lambda: self._decide(inc["metadata"]["name"]))

    def _verdict(self) -> int:
        return (
            EXIT_RESOLVED
            if self.phase() == Phase.RESOLVED and not self.ending
            else EXIT_NOT_RESOLVED
        )

    # -- chapter work (in the worker thread) ---------------------------------------------

    def _enter(self) -> None:
        c = self.chapter
        self.log.append(f"== {CHAPTERS.index(c) + 1}/{len(CHAPTERS)} {TITLES[c]}")
        if c == "baseline":
            self._submit("prepare", self._prepare)
        elif c == "load":
            self._submit("load", lambda: self._note("load", self.story.start_load(self.subject())))
        elif c == "fault":
            self._submit("inject", self._inject)
        elif c == "summary" and "finish" not in self.tasks:
            self._submit("finish", self._finish)

    def _submit(self, label: str, fn: Callable[[], Any]) -> None:
        self.tasks[label] = Task(self.pool.submit(fn), label)

    def _note(self, chapter: str, text: str) -> None:
        text = printable(text)  # notes repeat what others wrote (aiops approve's output)
        self.notes.setdefault(chapter, []).append(text)
        self.log.append(f"   {text}")
        with self.store.lock:
            self.store.bump()

    def _prepare(self) -> list[str]:
        """A clean, repeatable state: no Chaos, no earlier incidents or approvals (their
        audit logs stay), the counters reset, the switch on, the autonomy asked for."""
        ns, name = self.settings.namespace, self.settings.subject
        gone = self._delete_all("chaos", f"spec.subject={name}", wait=90)
        if gone:
            self._note("baseline", f"{gone} earlier Chaos deleted (their faults reverted)")
        incidents = self._delete_all("incidents", f"spec.subject={name}")
        approvals = self._delete_all("approvals", None)
        self._note(
            "baseline",
            f"{incidents} earlier incidents and {approvals} approvals "
            "deleted (their audit logs stay)",
        )
        try:
            cm = self.core.read_namespaced_config_map(SWITCH, ns)
            if ((cm.data or {}).get("actions") or "").strip().lower() == "stopped":
                self.core.patch_namespaced_config_map(SWITCH, ns, {"data": {"actions": "running"}})
                self._note("baseline", "the global switch was stopped: resumed")
        except ApiException as err:
            if err.status != 404:
                raise
        self._note("baseline", "actions switch on")
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            "subjects",
            name,
            {
                "spec": {
                    "autonomy": self.settings.autonomy,
                    "paused": False,
                    **self.story.subject_patch(self.settings.fault),
                }
            },
        )
        self._note("baseline", f"Subject {name}: autonomy {self.settings.autonomy}, not paused")
        subject = cast(
            dict[str, Any],
            self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "subjects", name),
        )
        for line in self.story.prepare(subject, self.settings.fault):
            self._note("baseline", line)
        return self.notes.get("baseline", [])

    def _delete_all(self, plural: str, selector: str | None, wait: float = 0) -> int:
        ns = self.settings.namespace

        def listed_now() -> list[dict[str, Any]]:
            listed = cast(
                dict[str, Any],
                self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, ns, plural, field_selector=selector or ""
                ),
            )
            return list(listed.get("items", []))

        names = [o["metadata"]["name"] for o in listed_now()]
        for n in names:
            try:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, plural, n)
            except ApiException as err:
                if err.status != 404:
                    raise
        deadline = time.monotonic() + wait
        while names and wait and time.monotonic() < deadline:
            if not listed_now():
                break
            time.sleep(0.5)
        return len(names)

    def _inject(self) -> str:
        s = self.settings
        spec = self.story.faults[s.fault]
        body: dict[str, Any] = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Chaos",
            "metadata": {
                "name": f"demo-{s.fault.replace('_', '-')}-{int(time.time())}",
                "labels": {DEMO_LABEL: "true"},
            },
            "spec": {
                "subject": s.subject,
                "fault": s.fault,
                "duration": s.duration,
                **({"params": s.params} if s.params else {}),
            },
        }
        target = self.story.target(spec, self.subject())
        if target is not None:
            body["spec"]["target"] = target
        self.custom.create_namespaced_custom_object(GROUP, VERSION, s.namespace, "chaos", body)
        self.chaos_name, self.chaos_spec = body["metadata"]["name"], body["spec"]
        self.injected_at = self.clock()
        self._note(
            "fault",
            f"Chaos {self.chaos_name} created: {s.fault}"
            + (f" on {target['member']}" if target and "member" in target else "")
            + f" for {s.duration}",
        )
        return self.chaos_name

    def _decide(self, incident: str) -> list[str]:
        """`aiops approve|reject INCIDENT` as the current kubectl user: the same command, so
        the Approval carries exactly the digests of the steps it printed."""
        started = time.monotonic()
        # Its own session, stdin closed: the terminal stays the demo's alone (a child that
        # touched it would stop on SIGTTIN or read the person's keys).
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "aiops.cli.main",
                self.decision,
                incident,
                "-n",
                self.settings.namespace,
                "--reason",
                f"{'approved' if self.decision == ApprovalDecision.APPROVE else 'rejected'} in "
                "aiops demo",
            ],
            env={**os.environ, "KUBECONFIG": self.settings.kubeconfig},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            start_new_session=True,
        )
        self.log.append(f"   aiops {self.decision} took {time.monotonic() - started:.1f} s")
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        for line in lines:
            self._note("approval", line)
        if proc.returncode != 0:
            raise RuntimeError(lines[-1] if lines else f"exit {proc.returncode}")
        return lines

    def _finish(self) -> list[str]:
        """Nothing left behind: the Chaos deleted (the operator reverts the fault first, and
        only then lets it go) and the load stopped."""
        if self.chaos_name:
            current = self.store.get("chaos", self.chaos_name)
            if current is not None:
                self.last_chaos = current
            try:
                self.custom.delete_namespaced_custom_object(
                    GROUP, VERSION, self.settings.namespace, "chaos", self.chaos_name
                )
                self.log.append(f"   Chaos {self.chaos_name} deleted: reverting the fault")
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    try:
                        self.last_chaos = cast(
                            dict[str, Any],
                            self.custom.get_namespaced_custom_object(
                                GROUP, VERSION, self.settings.namespace, "chaos", self.chaos_name
                            ),
                        )
                    except ApiException as err:
                        if err.status == 404:
                            self._note("summary", "fault reverted (Chaos gone)")
                            break
                        raise
                    time.sleep(0.3)
                else:
                    self._note(
                        "summary",
                        f"the Chaos is still reverting: `aiops chaos stop "
                        f"{self.chaos_name} -n {self.settings.namespace}` follows it",
                    )
            except ApiException as err:
                if err.status != 404:
                    raise
                self._note("summary", "fault reverted (Chaos gone)")
        self._note("summary", self.story.stop_load(self.subject()))
        return self.notes.get("summary", [])
