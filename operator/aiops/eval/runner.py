"""A run of a campaign: the plan (every subject x fault x variant x trial, numbered), the
database record, trials one at a time per Subject (Subjects in parallel threads), and the
clean-up that leaves no fault injected, on start, on resume, on Ctrl-C, and at the end.

A resumed run (`--resume RUN`) skips every trial already recorded; the one that was running
when the process died is run again from the start, under a new Chaos name.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiops.api import Chaos, Subject
from aiops.eval.campaign import CampaignError, LoadedCampaign
from aiops.eval.cluster import LABEL_RUN, EvalApi
from aiops.eval.preflight import SubjectFacts, check
from aiops.eval.records import RunRecord, TrialRecord
from aiops.eval.store import Store
from aiops.eval.trial import TrialPlan, TrialRunner, poll
from aiops.subjects.contract import utcnow


def plan(loaded: LoadedCampaign) -> list[TrialPlan]:
    """Trial k of every fault and variant before trial k+1 of any, so that an interrupted run
    holds comparable numbers of each."""
    c = loaded.campaign
    out: list[TrialPlan] = []
    for k in range(1, c.trials + 1):
        for fault in c.faults:
            for variant in c.variants:
                for s in c.subjects:
                    if not c.runs_on(variant, s):
                        continue
                    out.append(TrialPlan(len(out) + 1, c.subject_key(s), fault, variant, k))
    return out


def new_run_id() -> str:
    return f"eval-{utcnow().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class Progress:
    """What the runner tells its display; the CLI's rich progress implements it."""

    def start(self, total: int, done: int) -> None: ...
    def phase(self, subject: str, plan: TrialPlan, text: str) -> None: ...
    def finished(self, plan: TrialPlan, record: TrialRecord) -> None: ...
    def note(self, text: str) -> None: ...


@dataclass
class Runner:
    loaded: LoadedCampaign
    api: EvalApi
    store: Store
    audit_dir: Path | None = None
    progress: Progress | None = None
    api_key: str | None = None  # the workstation's Anthropic key, for anthropic variants

    def __post_init__(self) -> None:
        self.display = self.progress or Progress()
        self.stop = threading.Event()
        self.run_id: str | None = None

    def run(self, resume: str | None = None) -> RunRecord:
        facts = check(self.loaded, self.api)  # nothing is injected before this passes
        c = self.loaded.campaign
        trials = plan(self.loaded)
        if resume is None:
            run = RunRecord(
                id=new_run_id(),
                name=c.name,
                campaign_text=self.loaded.text,
                campaign_sha256=self.loaded.sha256,
                started_at=utcnow(),
                planned=len(trials),
                variants=[v.info() for v in c.variants],
                settings={
                    **c.timings(),
                    "subjects_before": {k: f.before for k, f in facts.items()},
                },
            )
            self.store.create_run(run)
        else:
            run = self.store.run(resume)
            if run.campaign_sha256 != self.loaded.sha256:
                raise CampaignError(
                    f"{self.loaded.path}: the campaign changed since run {resume} started "
                    "(its sha256 differs): resume with the file as it was, or start a new run"
                )
        self.run_id = run.id
        befores: dict[str, Any] = dict(run.settings.get("subjects_before") or {})
        done = self.store.done(run.id)
        todo = [t for t in trials if t.key not in done]
        runner = TrialRunner(
            self.api,
            c,
            run.id,
            self.audit_dir,
            api_key=self.api_key,
            stop=self.stop,
        )
        with self._cleaning(run.id, facts, befores, runner):
            self.display.start(len(trials), len(trials) - len(todo))
            by_subject: dict[str, list[TrialPlan]] = {}
            for t in todo:
                by_subject.setdefault(t.subject, []).append(t)
            workers = len(by_subject) if c.parallel else 1
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                futures = [
                    pool.submit(self._subject_trials, runner, ts) for ts in by_subject.values()
                ]
                try:
                    for fut in futures:
                        fut.result()
                except BaseException:
                    self.stop.set()  # the other Subjects' trials end at their next poll
                    raise
        if not self.stop.is_set():
            self.store.finish_run(run.id, utcnow())
        return self.store.run(run.id)

    def _subject_trials(self, runner: TrialRunner, trials: list[TrialPlan]) -> None:
        cooldown = self.loaded.campaign.timings()["cooldown_s"]
        for t in trials:
            if self.stop.is_set():
                return
            record = runner.run(t, partial(self.display.phase, t.subject, t))
            if self.stop.is_set():
                return  # interrupted mid-trial: not recorded; a resume runs it again
            self.store.add_trial(record)
            self.display.finished(t, record)
            self.display.phase(t.subject, t, "cooling down")
            poll(self.stop.is_set, cooldown)

    @contextmanager
    def _cleaning(
        self,
        run_id: str,
        facts: dict[str, SubjectFacts],
        befores: dict[str, Any],
        runner: TrialRunner,
    ) -> Iterator[None]:
        namespaces = sorted({f.namespace for f in facts.values()})
        self.remove_run_chaos(run_id, namespaces, runner.remove_chaos)
        try:
            yield
        except BaseException:
            self.stop.set()
            raise
        finally:
            self.remove_run_chaos(run_id, namespaces, runner.remove_chaos)
            self.restore_subjects(facts, befores)

    def remove_run_chaos(
        self, run_id: str, namespaces: list[str], remove: Callable[[str, str], bool]
    ) -> None:
        """Every Chaos this run made that is still there (a crash left it injected) is
        deleted, which reverts it, and waited for."""
        for ns in namespaces:
            for obj in self.api.list(Chaos.PLURAL, ns, f"{LABEL_RUN}={run_id}"):
                name = obj["metadata"]["name"]
                self.display.note(f"stopping Chaos {ns}/{name} left by run {run_id}")
                if not remove(ns, name):
                    self.display.note(f"Chaos {ns}/{name} is not gone yet: its revert goes on")

    def restore_subjects(self, facts: dict[str, SubjectFacts], befores: dict[str, Any]) -> None:
        """Each Subject's autonomy and agent as they were before the run."""
        for key, f in facts.items():
            before = befores.get(key, f.before)
            if self.api.get(Subject.PLURAL, f.namespace, f.name) is None:
                continue
            # A merge patch merges into agent: clear it first so nothing of a variant stays.
            self.api.patch(Subject.PLURAL, f.namespace, f.name, {"spec": {"agent": None}})
            patch = {"spec": {"autonomy": before.get("autonomy"), "agent": before.get("agent")}}
            self.api.patch(Subject.PLURAL, f.namespace, f.name, patch)
