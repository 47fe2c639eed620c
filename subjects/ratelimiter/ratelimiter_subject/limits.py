"""Limits as Redis stores them, read two ways: as the service's check script reads them (what is
enforced), and as whoever wrote them meant them (what is on record).

The check script takes a per-key limit only in the form `limit:window_ms` (Lua pattern
`^(%d+):(%d+)$`, ASCII digits); anything else in the limits hash is skipped and the key falls
back to the shared default, then to the node's default. A limit written in another form (JSON
from another tool, "5 : 60000", "5/60000") is therefore on record but not enforced: the key is
let through at the default while, by its own limit, it is exhausted. That is the defect of the
system this one replaces (per-key limits stored but never enforced), and `ghost_allowing` is
how it is seen from outside.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# The check script's own pattern, in Python: ASCII digits only (\d would take any Unicode
# digit, which Lua's %d does not).
_ENFORCED = re.compile(r"([0-9]+):([0-9]+)", re.ASCII)
# Forms a person or another tool plausibly wrote: "5 : 60000", "5/60000", "5 per 60000".
_LOOSE = re.compile(r"\s*([0-9]+)\s*(?::|/|per)\s*([0-9]+)\s*(?:ms)?\s*", re.ASCII)


@dataclass(frozen=True)
class Spec:
    limit: int
    window_ms: int

    def __str__(self) -> str:
        return f"{self.limit} per {self.window_ms} ms"


def enforced(raw: str | None) -> Spec | None:
    """The limit the check script reads from a limits-hash value, or None when it skips it."""
    if raw is None:
        return None
    m = _ENFORCED.fullmatch(raw)
    if not m:
        return None
    spec = Spec(int(m.group(1)), int(m.group(2)))
    # The script skips a limit or window below 1 (it runs on the default then).
    return spec if spec.limit >= 1 and spec.window_ms >= 1 else None


def recorded(raw: str) -> Spec | None:
    """What a value the script skips was meant to say, when that can be told: JSON with
    `limit` and `window_ms` (or `window`), or two numbers joined by ':', '/' or 'per'.
    Only limits the service itself would accept (limit and window at least 1) count."""
    spec: Spec | None = None
    m = _LOOSE.fullmatch(raw)
    if m:
        spec = Spec(int(m.group(1)), int(m.group(2)))
    else:
        try:
            doc = json.loads(raw)
        except ValueError:
            return None
        if isinstance(doc, dict):
            limit, window = doc.get("limit"), doc.get("window_ms", doc.get("window"))
            if (
                isinstance(limit, int)
                and isinstance(window, int)
                and not isinstance(limit, bool)
                and not isinstance(window, bool)
            ):
                spec = Spec(limit, window)
    if spec is None or spec.limit < 1 or spec.window_ms < 1:
        return None
    return spec
