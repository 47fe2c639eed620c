"""Runs the story: on a terminal, the full screen (Rich Live on the alternate screen); else
(a pipe, CI, a test) plain lines, one per chapter and per thing that happened."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from kubernetes import client
from rich.console import Console
from rich.live import Live
from rich.text import Text

from aiops.demo.director import Director, Settings
from aiops.demo.sources import PLURALS, AuditTail, Sampler, Store, Watcher
from aiops.demo.stories import Story
from aiops.demo.terminal import keyboard
from aiops.demo.view import Screen, timeline_text

FRAME = 0.25  # the screen is redrawn at most this often, and at once after a key


def start_sources(
    store: Store,
    api: client.ApiClient,
    settings: Settings,
    story: Story,
    audit_dir: Path | None,
    prometheus: str | None,
    incidents: object,
) -> threading.Event:
    stop = threading.Event()
    custom = client.CustomObjectsApi(api)
    for plural in PLURALS:
        Watcher(store, custom, settings.namespace, plural, stop).start()
    tail = AuditTail(store, audit_dir, settings.namespace) if audit_dir else None
    Sampler(store, prometheus, story.queries(), tail, incidents, stop).start()
    return stop


def wait_synced(store: Store, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.lock:
            if set(PLURALS) <= store.synced:
                return True
        time.sleep(0.05)
    return False


def summary_lines(director: Director) -> list[str]:
    return [t.plain for t in Screen(director).summary_body([]) if isinstance(t, Text)]


def interactive(director: Director, console: Console) -> int:
    screen = Screen(director)
    try:
        with (
            keyboard(sys.stdin.fileno()) as keys,
            Live(console=console, screen=True, auto_refresh=False, transient=True) as live,
        ):
            seen, drawn = -1, 0.0
            while director.exit_code is None:
                pressed = keys.read(FRAME / 2)
                director.tick(pressed)
                now = time.monotonic()
                if pressed or director.store.version != seen or now - drawn >= 1.0:
                    seen, drawn = director.store.version, now
                    width, height = console.size
                    live.update(screen.render(width, height), refresh=True)
    except BaseException:
        # The terminal went away (EIO on a closed pty) or something broke: the fault is
        # reverted and the load stopped all the same, before the error is reported.
        director.abandon()
        raise
    return director.exit_code


def plain(director: Director) -> int:
    """The director's log (chapters, notes) as it grows, the incident's phases and each
    audit record as the operator writes it."""
    logged, records, phase = 0, 0, ""
    print(Screen(director).header(wide=True).plain.strip(), flush=True)
    with keyboard(None) as keys:
        while director.exit_code is None:
            try:
                director.tick(keys.read(0))
            except BaseException:
                director.abandon()
                raise
            for line in director.log[logged:]:
                print(line, flush=True)
            logged = len(director.log)
            inc = director.incident()
            if inc is not None:
                now = (inc.get("status") or {}).get("phase") or ""
                if now != phase:
                    phase = now
                    print(f"   incident {inc['metadata']['name']}: {phase}", flush=True)
                with director.store.lock:
                    got = list(director.store.audit.get(inc["metadata"]["name"], []))
                for r in got[records:]:
                    print(f"   {timeline_text(r).plain}", flush=True)
                records = len(got)
            time.sleep(FRAME)
    for line in director.log[logged:]:
        print(line, flush=True)
    return director.exit_code


def run(director: Director, console: Console) -> int:
    if console.is_terminal and sys.stdin.isatty():
        code = interactive(director, console)
    else:
        code = plain(director)
    # Back on the normal screen (or at the end of the log): what happened, in a few lines.
    for line in summary_lines(director):
        print(line)
    return code
