"""Keys from the terminal without Enter, and the terminal given back as it was.

The terminal is put in cbreak mode (keys arrive one by one, no echo; Ctrl-C still raises
SIGINT, which is turned into the key "ctrl-c" like SIGTERM and SIGHUP are into "quit"). The
saved settings are restored on exit, whatever the exit, so the shell gets its terminal back.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import termios
import tty
from collections.abc import Iterator
from types import FrameType
from typing import Any

KEYS = {
    b" ": "space",
    b"\r": "enter",
    b"\n": "enter",
    b"\x03": "ctrl-c",
    b"a": "a",
    b"A": "a",
    b"r": "r",
    b"R": "r",
    b"q": "q",
    b"Q": "q",
}


def parse(data: bytes) -> list[str]:
    """Key names in a burst of input; escape sequences other than → are ignored."""
    out: list[str] = []
    i = 0
    while i < len(data):
        for seq in (b"\x1b[C", b"\x1bOC"):
            if data.startswith(seq, i):
                out.append("right")
                i += len(seq)
                break
        else:
            if data[i : i + 1] == b"\x1b":  # another sequence: skip to its final byte
                j = i + 1
                if data[j : j + 1] in (b"[", b"O"):
                    j += 1
                    while j < len(data) and not 0x40 <= data[j] <= 0x7E:
                        j += 1
                i = j + 1
                continue
            name = KEYS.get(data[i : i + 1])
            if name is not None:
                out.append(name)
            i += 1
    return out


class Keys:
    """Pending key names, from the terminal and from signals."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.pending: list[str] = []

    def signalled(self, signum: int, _frame: FrameType | None) -> None:
        self.pending.append("ctrl-c" if signum == signal.SIGINT else "q")

    def read(self, timeout: float) -> list[str]:
        """Keys typed within `timeout` seconds (returns early when one comes)."""
        if self.fd is not None and not self.pending:
            with contextlib.suppress(InterruptedError, OSError):
                ready, _, _ = select.select([self.fd], [], [], timeout)
                if ready:
                    self.pending += parse(os.read(self.fd, 64))
        got, self.pending = self.pending, []
        return got


@contextlib.contextmanager
def keyboard(fd: int | None) -> Iterator[Keys]:
    """cbreak on `fd` (None: no terminal, signals only), signals as keys; all restored."""
    keys = Keys(fd)
    saved: Any = None
    if fd is not None:
        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
    handlers = {
        s: signal.signal(s, keys.signalled) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield keys
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
        if fd is not None and saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
