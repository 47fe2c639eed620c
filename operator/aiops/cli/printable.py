"""Text that others wrote, made safe to print on a person's terminal.

A step's rationale, a diagnosis, an escalation reason or a dry-run message is written by the
model, or repeats what a pod logged. Printed as it is, an escape sequence in it moves the
cursor and redraws what was printed above it — `aiops approve` would show a harmless step
where the real one was, `aiops audit show` a record that is not there — and a bidirectional
override reverses the text after it. So every control, format or separator character is
printed as its escape (`\\x1b`, `\\r`, `\\n`, `\\u202e`), the way Python's `repr` writes it.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """`text` with every character a terminal would act on, rather than show, escaped."""
    if text.isprintable():
        return text
    return "".join(c if _shown(c) else repr(c)[1:-1] for c in text)


def _shown(c: str) -> bool:
    return c.isprintable() or (c.isspace() and c not in _BREAKS)


# Whitespace that moves the cursor to another line or column: escaped too. (Other spaces,
# such as a no-break space, are shown as spaces.)
_BREAKS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
