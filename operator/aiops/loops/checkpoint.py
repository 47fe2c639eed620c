"""A file per incident, beside its audit log, where an agent keeps its in-flight session.
Written atomically (temp file, fsync, rename) so a kill mid-write leaves the previous one."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any


class FileCheckpoint:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                data = json.loads(self.path.read_text())
            except (OSError, ValueError):
                return None
            return data if isinstance(data, dict) else None

        return await asyncio.to_thread(read)

    async def save(self, state: dict[str, Any]) -> None:
        def write() -> None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with tmp.open("w") as f:
                json.dump(state, f)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(self.path)

        await asyncio.to_thread(write)

    async def clear(self) -> None:
        await asyncio.to_thread(self.path.unlink, missing_ok=True)
