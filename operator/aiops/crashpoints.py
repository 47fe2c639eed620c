"""Named points where a test can have the operator killed (SIGKILL), to prove that an incident
resumes correctly from any of them. Inert unless AIOPS_CRASHPOINTS names the point.

    AIOPS_CRASHPOINTS=after-action-recorded aiops operator run -n demo

Only the first passage through a point kills: a marker file (AIOPS_CRASHPOINTS_DIR) remembers
it, so the restarted operator gets past.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def crashpoint(name: str) -> None:
    wanted = os.environ.get("AIOPS_CRASHPOINTS", "")
    if not wanted or name not in wanted.split(","):
        return
    marker_dir = Path(os.environ.get("AIOPS_CRASHPOINTS_DIR", "."))
    marker = marker_dir / f"crashed-at-{name}"
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
