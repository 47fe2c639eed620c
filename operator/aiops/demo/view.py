"""The screen: Rich renderables drawn from the director and the store, sized to the terminal.

 header       subject, autonomy, agent, fault, clock
 members      ●/✗ per member and Redis   | workload: sparklines from Prometheus
 incidents    phase, age, TTD, TTR
 chapter      what this chapter shows    | agent timeline (the audit log, as written)
 narration    the chapters, where we are, and the keys

Below MIN_WIDTH x MIN_HEIGHT nothing but the minimum size is drawn.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.align import Align
from rich.console import Console, Group, RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from aiops.audit.record import AuditRecord
from aiops.cli.audit import summarize
from aiops.cli.printable import printable
from aiops.demo.director import CHAPTERS, TITLES, Director, ts
from aiops.vocabulary import ChaosPhase, Health, MemberState, Outcome, Phase, Verdict

MIN_WIDTH, MIN_HEIGHT = 80, 24
BARS = "▁▂▃▄▅▆▇█"
PHASE_STYLE: dict[str, str] = {
    Phase.RESOLVED: "bold green",
    Phase.ESCALATED: "bold red",
    Phase.AWAITING_APPROVAL: "bold yellow",
    Phase.REMEDIATING: "bold cyan",
    Phase.VERIFYING: "cyan",
    Phase.INVESTIGATING: "magenta",
    Phase.OPEN: "yellow",
}
MEMBER_STYLE: dict[str, str] = {
    MemberState.UP: "green",
    MemberState.DOWN: "bold red",
    MemberState.DEGRADED: "yellow",
    MemberState.UNKNOWN: "dim",
}
VERDICT_STYLE: dict[str, str] = {
    Verdict.RUN: "green",
    Verdict.AWAIT_APPROVAL: "yellow",
    Verdict.REFUSED: "red",
}


def too_small(width: int, height: int) -> RenderableType:
    text = Text.assemble(
        ("aiops demo needs a terminal of at least ", ""),
        (f"{MIN_WIDTH}x{MIN_HEIGHT}", "bold"),
        (
            f"; this one is {width}x{height}.\nEnlarge the window (the demo goes on meanwhile; "
            "q quits).",
            "",
        ),
    )
    return Layout(Align.center(text, vertical="middle"))


def sparkline(values: list[float], width: int) -> str:
    values = values[-width:]
    top = max(values, default=0.0)
    if top <= 0:
        return "▁" * len(values)
    return "".join(BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))] for v in values)


def age(value: Any, now: datetime) -> str:
    t = ts(value)
    if t is None:
        return "-"
    s = int((now - t).total_seconds())
    return f"{s}s" if s < 120 else f"{s // 60}m{s % 60:02d}s"


def secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def timeline_text(record: AuditRecord) -> Text:
    """One audit record as the agent's timeline shows it: what happened, in words."""
    d = record.data
    k = record.kind
    style = ""
    if k == "phase":
        text, style = f"{d.get('from')} → {d.get('to')}: {d.get('message', '')}", "bold"
    elif k == "policy.decision":
        verdict = d.get("verdict") or d.get("decision") or "?"
        style = VERDICT_STYLE.get(verdict, "")
        text = (
            f"gate ({d.get('phase')}): {d.get('id', '')} {d.get('action', '')} → "
            f"{verdict}: {d.get('reason', '')}"
        )
    elif k in ("action.started", "action.finished"):
        params = json.dumps(d.get("params") or {}, sort_keys=True)
        text = f"{k.split('.')[1]} {d.get('id')} {d.get('action')} {params}"
        if k == "action.finished":
            text += f": {d.get('result')} {d.get('message') or ''}"
            style = "green" if d.get("result") == Outcome.SUCCEEDED else "red"
    elif k == "approval":
        text = (
            f"approval by {d.get('by')}: {d.get('decision')} "
            f"{', '.join(d.get('applied') or []) or d.get('stale', '')}"
        )
        style = "yellow"
    elif k == "verify":
        text, style = (
            ("verified: the invariant holds" if d.get("holds") else "verify: still broken"),
            "green" if d.get("holds") else "",
        )
    elif k == "tool.call":
        text = f"tool {d.get('name') or d.get('tool')} {json.dumps(d.get('input') or {})}"
    elif k == "agent.result":
        diag = (d.get("diagnosis") or {}).get("summary") or ""
        text = f"agent: {d.get('outcome')}: {diag}"
    elif k == "agent.start":
        text = f"agent {d.get('agent')} starts the investigation"
    else:
        text = summarize(d, 200)
    when = record.time.astimezone(UTC).strftime("%H:%M:%S")
    # The record's data is the model's and the tools' words: shown, never acted on.
    return Text.assemble((f"{when} ", "dim"), (f"{k:<16.16} ", "cyan"), (printable(text), style))


class Screen:
    def __init__(self, director: Director) -> None:
        self.d = director

    def render(self, width: int, height: int) -> RenderableType:
        if width < MIN_WIDTH or height < MIN_HEIGHT:
            return too_small(width, height)
        wide = width >= 110
        layout = Layout()
        members = len((self.d.subject().get("status") or {}).get("members") or []) or 3
        top = members + len(self.d.story.extras(self.d.store)) + 2
        incidents = max(1, min(len(self.d.store.items("incidents")), 4 if height >= 36 else 2))
        layout.split_column(
            Layout(self.header(wide), name="header", size=1),
            Layout(name="top", size=max(top, 5)),
            Layout(self.incidents(width), name="incidents", size=incidents + 2),
            Layout(name="bottom"),
            Layout(self.narration(width), name="narration", size=2),
        )
        layout["top"].split_row(
            Layout(self.members(), name="members", size=34),
            Layout(self.workload(width - 34), name="workload"),
        )
        rest = height - 1 - max(top, 5) - (incidents + 2) - 2
        if wide:
            chapter_width = width * 9 // 20
            layout["bottom"].split_row(
                Layout(self.chapter_panel(), name="chapter", size=chapter_width),
                Layout(self.timeline(rest - 2, width - chapter_width - 4), name="timeline"),
            )
        else:
            chapter_size = max(7, rest // 2 + 2)
            layout["bottom"].split_column(
                Layout(self.chapter_panel(), name="chapter", size=chapter_size),
                Layout(self.timeline(rest - chapter_size - 2, width - 4), name="timeline"),
            )
        return layout

    # -- panels --------------------------------------------------------------------------------

    def header(self, wide: bool) -> Text:
        s = self.d.settings
        agent = self._agent()
        fault = s.fault
        target = (self.d.chaos_spec or {}).get("target") or {}
        if target.get("member"):
            fault += f" → {target['member']}"
        clock = datetime.now(UTC).strftime("%H:%M:%S")
        if not wide:  # 80 columns: the values without their names
            return Text.assemble(
                (" aiops demo ", "bold reverse"),
                " ",
                (self.d.story.subject_type, "bold"),
                f" · {s.autonomy} · ",
                (agent, "bold magenta"),
                f" · {fault}",
                overflow="ellipsis",
                no_wrap=True,
            )
        return Text.assemble(
            (" aiops demo ", "bold reverse"),
            " ",
            (self.d.story.subject_type, "bold"),
            f" · autonomy {s.autonomy} · agent ",
            (agent, "bold magenta"),
            f" · fault {fault}",
            ("  " + clock, "dim"),
            overflow="ellipsis",
            no_wrap=True,
        )

    def _agent(self) -> str:
        usage = ((self.d.incident() or {}).get("status") or {}).get("agent") or {}
        backend = usage.get("backend") or self.d.settings.agent
        if backend == "anthropic":
            return f"Claude ({usage['model']})" if usage.get("model") else "Claude"
        return "runbook"

    def members(self) -> Panel:
        table = Table.grid(padding=(0, 1))
        for m in (self.d.subject().get("status") or {}).get("members") or []:
            state = m.get("state", MemberState.UNKNOWN)
            mark = "●" if state == MemberState.UP else "✗"
            style = MEMBER_STYLE.get(state, "")
            table.add_row(
                Text(mark, style=style), Text(m["name"], style=style), Text(state, style=style)
            )
        for extra in self.d.story.extras(self.d.store):
            style = {True: "green", False: "bold red", None: "dim"}[extra.ok]
            table.add_row(
                Text("●" if extra.ok else "✗", style=style),
                Text(extra.name, style=style),
                Text(extra.text, style=style),
            )
        health = (self.d.subject().get("status") or {}).get("health") or "?"
        style = "green" if health == Health.HEALTHY else "bold red"
        return Panel(
            table,
            title=f"Subject {self.d.settings.subject}: [{style}]{health}[/]",
            title_align="left",
            border_style=style,
        )

    def workload(self, width: int) -> Panel:
        table = Table.grid(padding=(0, 1))
        span = max(10, width - 24)
        with self.d.store.lock:
            series = {k: list(v) for k, v in self.d.store.series.items()}
            problem = self.d.store.problems.get("prometheus")
        for label, shown in self.d.story.rates():
            values = series.get(label, [])
            style = {"blocked": "yellow", "errors": "red", "failed/s": "red"}.get(label, "green")
            now = f"{values[-1]:7.1f}/s" if values else "      -"
            table.add_row(
                Text(f"{shown:<8}"), Text(sparkline(values, span), style=style), Text(now)
            )
        if problem:
            table.add_row("", Text(problem, style="red"), "")
        return Panel(table, title="Workload: checks per second (Prometheus)", title_align="left")

    def incidents(self, width: int) -> Panel:
        now = datetime.now(UTC)
        ours = (self.d.incident() or {}).get("metadata", {}).get("name")
        ttd, ttr = self.d.times()
        table = Table.grid(padding=(0, 2))
        rows = self.d.store.items("incidents")[-4:]
        for inc in rows:
            st = inc.get("status") or {}
            name = inc["metadata"]["name"]
            phase = st.get("phase") or Phase.OPEN
            mine = name == ours
            detecting = mine and self.d.chapter == "detection"
            style = "bold white on red" if detecting else ("bold" if mine else "dim")
            table.add_row(
                Text(
                    ("▶ " if mine else "  ") + name, style=style, overflow="ellipsis", no_wrap=True
                ),
                Text(phase, style=PHASE_STYLE.get(phase, "")),
                Text(f"age {age(inc['metadata'].get('creationTimestamp'), now)}"),
                Text(f"TTD {secs(ttd) if mine else '-'}", style="bold" if mine else "dim"),
                Text(f"TTR {secs(ttr) if mine else '-'}", style="bold" if mine else "dim"),
            )
        if not rows:
            table.add_row(Text("none open", style="dim"))
        return Panel(
            table,
            title="Incidents",
            title_align="left",
            border_style="red" if self.d.chapter == "detection" and ours else "",
        )

    def timeline(self, lines: int, width: int) -> Panel:
        inc = self.d.incident()
        body: list[Text] = []
        title = "Agent timeline (audit log)"
        if inc is not None:
            name = inc["metadata"]["name"]
            with self.d.store.lock:
                records = list(self.d.store.audit.get(name, []))
                problem = self.d.store.audit_problem.get(name)
            body = [timeline_text(r) for r in records]
            if not records:
                # Nothing in the log yet, or it is not on this machine (an operator in a
                # cluster): the Incident's own timeline, and the title says so.
                title = "Timeline (the Incident's status: no audit record here yet)"
                body = [
                    Text.assemble(
                        (t.get("time", "")[11:19] + " ", "dim"),
                        (f"{t.get('phase') or '':<16.16} ", "cyan"),
                        t.get("message", ""),
                    )
                    for t in (inc.get("status") or {}).get("timeline") or []
                ]
            if problem:
                body.append(Text(problem, style="red"))
        else:
            body = [Text("no incident yet", style="dim")]
        # The newest records that fit, each wrapped to the panel's width.
        measure = Console(width=max(width, 10), color_system=None)
        shown: list[Text] = []
        used = 0
        for t in reversed(body):
            used += len(t.wrap(measure, max(width, 10)))
            if used > max(1, lines) and shown:
                break
            shown.insert(0, t)
        return Panel(Group(*shown), title=title, title_align="left")

    def chapter_panel(self) -> Panel:
        c = self.d.chapter
        number = CHAPTERS.index(c) + 1
        body = Group(*self.chapter_body(c))
        style = (
            "bold red"
            if c in ("fault", "detection")
            else ("bold yellow" if c == "approval" else "bold green" if c == "summary" else "bold")
        )
        return Panel(
            body,
            title=f"Chapter {number}/{len(CHAPTERS)} · {TITLES[c]}",
            title_align="left",
            border_style=style,
        )

    def chapter_body(self, c: str) -> list[RenderableType]:
        d, s = self.d, self.d.settings
        notes = [Text("· " + n, style="dim") for n in d.notes.get(c, [])]
        ok, waiting = d.ready()
        wait = [] if ok else [Text(f"waiting for {waiting}…", style="italic")]
        st = (d.incident() or {}).get("status") or {}
        inc_name = (d.incident() or {}).get("metadata", {}).get("name", "")
        if c == "baseline":
            members = (d.subject().get("status") or {}).get("members") or []
            up = sum(1 for m in members if m.get("state") == MemberState.UP)
            return [
                Text(
                    f"Every member is up ({up}/{len(members)}) and no incident is open: "
                    "this is what healthy looks like. The operator observes the Subject "
                    "every second."
                ),
                Text("Clean state for this run:"),
                *notes,
                *wait,
            ]
        if c == "load":
            return [
                Text(
                    f"Load: {d.story.load_text}. Watch the allowed rate climb in the "
                    "workload panel (Prometheus, scraped each second)."
                ),
                *notes,
                *wait,
            ]
        if c == "countdown":
            left = max(0.0, s.countdown - (d.clock() - d.entered))
            return [
                Text(f"Injecting {s.fault} in", style="bold"),
                Align.center(Text(f"{left:.0f}", style="bold red")),
            ]
        if c == "fault":
            chaos = d.chaos()
            cst = chaos.get("status") or {}
            targets = ", ".join(t.get("name", "") for t in cst.get("targets") or []) or "-"
            return [
                Text.assemble(
                    "Chaos ",
                    (d.chaos_name or "(being created)", "bold"),
                    f": {s.fault} for {s.duration}",
                ),
                Text(d.story.faults[s.fault].description, style="dim"),
                Text.assemble(
                    "phase ",
                    (cst.get("phase") or ChaosPhase.PENDING, "bold red"),
                    f" · target {targets}",
                ),
                Text(cst.get("message") or "", style="dim"),
                *wait,
            ]
        if c == "detection":
            if d.incident() is None:
                return [
                    Text(
                        "The subject loop compares each observation with the plugin's "
                        "invariants; a breach must hold for the invariant's hold time "
                        "before an Incident opens."
                    ),
                    *wait,
                ]
            ttd, _ = d.times()
            spec = (d.incident() or {}).get("spec") or {}
            return [
                Text(f"DETECTED in {secs(ttd)}", style="bold white on red"),
                Text.assemble("Incident ", (inc_name, "bold")),
                Text.assemble(
                    "invariant ",
                    (str(spec.get("invariant")), "bold"),
                    " · entity ",
                    (spec.get("entity") or "-", "bold"),
                ),
                Text(spec.get("summary") or "", style="dim"),
                Text("TTD: from the Chaos' injectedAt to the Incident's detectedAt.", style="dim"),
            ]
        if c == "diagnosis":
            diag = st.get("diagnosis") or {}
            out: list[RenderableType] = [Text(f"The {self._agent()} agent investigates.")]
            if diag:
                out += [
                    Text(diag.get("summary", "")),
                    Text(f"root cause: {diag.get('rootCause') or '-'}", style="bold"),
                ]
            return out + wait
        if c == "approval":
            out = [Text(f"Autonomy {s.autonomy}: the plan waits for a person.")]
            for p in st.get("proposedActions") or []:
                dry = p.get("dryRun")
                out.append(
                    Text.assemble(
                        (f"{p.get('id')} {p.get('action')} ", "bold"),
                        json.dumps(p.get("params") or {}, sort_keys=True),
                    )
                )
                out.append(
                    Text.assemble(
                        "   risk ",
                        (p.get("risk", "?"), "bold red" if p.get("risk") == "high" else "yellow"),
                        f" · dry run {_dry_word(dry)}",
                    )
                )
                out.append(
                    Text(f"   policy: {p.get('decision')}: {p.get('reason') or ''}", style="dim")
                )
            if not d.decision:
                out.append(
                    Text(
                        "a approve · r reject  (an Approval as your kubectl user)",
                        style="bold yellow",
                    )
                )
            else:
                out.append(Text(f"{d.decision} sent as your kubectl user:", style="bold"))
            err = d.error("decide")
            return out + notes + ([Text(printable(err), style="red")] if err else []) + wait
        if c == "remediation":
            out = [Text("The operator runs the approved plan, one step at a time.")]
            for a in st.get("executedActions") or []:
                who = f" (approved by {a['approvedBy']})" if a.get("approvedBy") else ""
                out.append(Text(f"{a.get('id')} {a.get('action')}: {a.get('result')}{who}"))
                if a.get("message"):
                    out.append(Text("   " + a["message"], style="dim"))
            return out + wait
        if c == "verification":
            spec = (d.incident() or {}).get("spec") or {}
            phase = st.get("phase") or ""
            return [
                Text(
                    f"The fix counts only once {spec.get('invariant')} holds again for "
                    f"{spec.get('entity') or 'the subject'}, observed live."
                ),
                Text(phase, style=PHASE_STYLE.get(phase, "")),
                *wait,
            ]
        return self.summary_body(wait)

    def summary_body(self, wait: list[Text]) -> list[RenderableType]:
        d = self.d
        st = (d.incident() or {}).get("status") or {}
        ttd, ttr = d.times()
        phase = st.get("phase")
        inc = (d.incident() or {}).get("metadata", {}).get("name")
        out: list[RenderableType] = (
            [
                Text.assemble(("Incident ", "bold"), inc or ""),
                Text.assemble(
                    (phase or "", PHASE_STYLE.get(phase or "", "")),
                    ("   TTD ", "bold"),
                    secs(ttd),
                    ("   TTR ", "bold"),
                    secs(ttr),
                ),
            ]
            if inc
            else [Text("No incident was opened.", style="bold")]
        )
        if d.ending:
            out.append(Text(d.ending, style="bold red"))
        if st.get("escalationReason"):
            out.append(Text(f"escalated: {st['escalationReason']}", style="red"))
        for a in st.get("executedActions") or []:
            who = f", approved by {a['approvedBy']}" if a.get("approvedBy") else ""
            out.append(Text(f"action {a.get('id')} {a.get('action')}: {a.get('result')}{who}"))
        if phase == Phase.RESOLVED and not st.get("executedActions"):
            out.append(
                Text(
                    "no action ran: the agent diagnosed, and the Subject recovered "
                    "once the fault ended"
                )
            )
        usage = st.get("agent") or {}
        if usage.get("backend") == "anthropic":
            out.append(
                Text(
                    f"model {usage.get('model')}: {usage.get('inputTokens', 0)} in / "
                    f"{usage.get('outputTokens', 0)} out tokens, "
                    f"${usage.get('costUSD', 0):.4f}"
                )
            )
        elif usage:
            out.append(Text("agent: the runbook (no model, no tokens)"))
        out += [Text(n, style="dim") for n in d.notes.get("summary", [])]
        return out + wait

    def narration(self, width: int) -> Text:
        d = self.d
        parts: list[tuple[str, str] | str] = []
        # Every chapter named when they fit on the line; else marks, and the current one named.
        named = sum(len(c) + 2 for c in CHAPTERS) <= width
        for i, c in enumerate(CHAPTERS):
            if i < d.index:
                mark = ("✓", "green") if c not in d.skipped else ("-", "dim")
            elif i == d.index:
                mark = ("▶", "bold reverse")
            else:
                mark = ("○", "dim")
            parts.append(mark)
            if i == d.index:
                parts.append(
                    (
                        f"{c.upper()} {i + 1}/{len(CHAPTERS)} " if not named else f"{c.upper()} ",
                        "bold",
                    )
                )
            elif named:
                parts.append((f"{c} ", "dim"))
        ok, waiting = d.ready()
        if d.quitting:
            keys = "quitting: reverting the fault and stopping the load…"
        elif d.chapter == "summary":
            keys = "q quit · SPACE quit" if ok else f"waiting for {waiting}…"
        elif d.chapter == "approval" and not d.decision:
            keys = "a approve · r reject · q quit"
        elif d.settings.auto:
            keys = "--auto: the story moves on by itself · q quit"
        elif ok and d.chapter != "countdown":
            keys = "SPACE/ENTER/→ next · q quit"
        elif d.asked:
            keys = f"next chapter once {waiting} is seen… · q quit"
        else:
            keys = f"waiting for {waiting}… · q quit"
        return Text.assemble(*parts, "\n", (keys, "bold"), no_wrap=True, overflow="ellipsis")


def _dry_word(dry: dict[str, Any] | None) -> str:
    """The server's dry run of a step, in a word."""
    if dry is None:
        return "-"
    return "ok" if dry.get("ok") else "REFUSED"
