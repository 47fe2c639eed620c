"""A member's data directory filled to a percentage with one file, `aiops-chaos-fill`, which
the revert removes: the disk-full fault.

Two ways to say what the percentage is of:
- the filesystem holding the directory (df's Use%: used / (used + available)), which is what a
  member on its own volume (a pod's PersistentVolume) runs out of;
- `capacity_bytes`: the directory is taken to be a volume of that size (an emptyDir
  sizeLimit, a quota), and what it already holds counts. This is how a test fills "90%"
  without writing most of a shared disk.

Either way the file is capped by `max_bytes` (1 GiB unless raised): a fill that would need
more is refused before anything is written, never silently cut short, and with
`capacity_bytes` never one that would leave the real filesystem with less than `RESERVE`
free. Blocks are allocated for real (fallocate, else zeros written), so the disk is fuller,
not only the file's length.

Local directories (supervisor workloads) are filled here; for pods, `*_argv` build the
commands run in the member's container and `parse_*` read their output.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints

from aiops.subjects.contract import ActionResult, Frozen, PluginError
from aiops.subjects.faults import PREFIX

FILL_FILE = f"{PREFIX}fill"
MIB = 1 << 20
GIB = 1 << 30
RESERVE = 64 * MIB  # a capacity fill never leaves the real filesystem less than this
_CHUNK = 4 * MIB

# A data directory as a config names it: an absolute path of plain names (no "..", no
# spaces, no shell characters), since it is handed to commands run in a pod.
DATA_DIR_PATTERN = r"^(/[A-Za-z0-9_.+@-]*[A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*)+/?$"
DataDir = Annotated[str, StringConstraints(pattern=DATA_DIR_PATTERN, max_length=512)]


class FillParams(Frozen):
    percent: int = Field(
        default=90,
        ge=1,
        le=99,
        description="How full to make it, in percent (df's Use%, or of capacity_bytes).",
    )
    capacity_bytes: int | None = Field(
        default=None,
        ge=MIB,
        le=1 << 44,
        description="Take the directory to be a volume of this size (what it holds counts); "
        "unset: the percentage is of the filesystem holding it.",
    )
    max_bytes: int = Field(
        default=GIB,
        ge=1,
        le=64 * GIB,
        description="The most the fill file may hold; a fill needing more is refused.",
    )


@dataclass(frozen=True)
class Usage:
    used: int  # bytes in use: the filesystem's, or the directory's with capacity_bytes
    size: int  # what the percentage is of: used + available, or capacity_bytes
    available: int  # bytes the filesystem still has for a non-root writer

    def percent(self) -> float:
        return 100.0 * self.used / self.size if self.size else 100.0


def human(n: int) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def plan(usage: Usage, p: FillParams, where: str) -> int:
    """Bytes the fill file must hold to bring `usage` to `p.percent`; 0 when it is there
    already. Raises `PluginError` (nothing written) when that is more than allowed."""
    need = math.ceil(usage.size * p.percent / 100) - usage.used
    if need <= 0:
        return 0
    if need > p.max_bytes:
        raise PluginError(
            f"filling {where} to {p.percent}% needs {human(need)}, more than max_bytes "
            f"({human(p.max_bytes)}): raise max_bytes, or set capacity_bytes to fill a "
            "smaller volume"
        )
    # Of a filesystem, the percentage (99 at most) is what bounds the fill; of a capacity,
    # the real filesystem under it keeps a reserve.
    reserve = 0 if p.capacity_bytes is None else RESERVE
    if need > usage.available - reserve:
        raise PluginError(
            f"filling {where} to {p.percent}% needs {human(need)} but the filesystem has "
            f"{human(usage.available)} free, and {human(reserve)} of it is never filled"
        )
    return need


# -- a local directory (supervisor workloads) -------------------------------------------------


def _directory(directory: str) -> Path:
    path = Path(directory)
    if not path.is_absolute():
        raise PluginError(f"data directory {directory!r} is not an absolute path")
    if not path.is_dir():
        raise PluginError(f"data directory {directory} does not exist or is not a directory")
    return path


def _du(path: Path) -> int:
    """Bytes allocated under `path` (du -s): links not followed, other mounts counted too."""
    total = 0
    stack = [path]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone since listed (a live data directory changes)
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    stack.append(Path(entry.path))
    return total


def local_usage(directory: Path, capacity: int | None) -> Usage:
    vfs = os.statvfs(directory)
    used = (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize
    available = vfs.f_bavail * vfs.f_frsize
    if capacity is None:
        return Usage(used=used, size=used + available, available=available)
    return Usage(used=_du(directory), size=capacity, available=available)


def _remove(path: Path) -> bool:
    """Removes the fill file; False when there was none. Anything else under that name (a
    link, a directory) is not ours to remove."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        raise PluginError(f"{path} is not a regular file: not the fill file, left alone")
    path.unlink(missing_ok=True)
    return True


def _write(path: Path, nbytes: int) -> None:
    # O_EXCL|O_NOFOLLOW: never write through a link or into a file someone else made.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, nbytes)
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            zeros = bytes(_CHUNK)
            left = nbytes
            while left > 0:
                left -= os.write(fd, zeros[: min(left, _CHUNK)])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _fill_local(directory: str, p: FillParams) -> str:
    path = _directory(directory)
    fill = path / FILL_FILE
    _remove(fill)  # injected again: the one file is planned afresh
    before = local_usage(path, p.capacity_bytes)
    what = f"{path}" if p.capacity_bytes is None else f"{path} (as {human(p.capacity_bytes)})"
    nbytes = plan(before, p, what)
    if nbytes == 0:
        return (
            f"{what} is {before.percent():.0f}% full already, at or over the "
            f"{p.percent}% asked: nothing written"
        )
    try:
        _write(fill, nbytes)
    except OSError as err:
        raise PluginError(f"cannot write {fill}: {err.strerror or err}") from err
    after = local_usage(path, p.capacity_bytes)
    return (
        f"wrote {fill} ({human(nbytes)}): {what} is {after.percent():.0f}% full "
        f"(was {before.percent():.0f}%, {p.percent}% asked)"
    )


def _unfill_local(directory: str) -> str:
    fill = Path(directory) / FILL_FILE
    try:
        removed = _remove(fill)
    except OSError as err:
        raise PluginError(f"cannot remove {fill}: {err.strerror or err}") from err
    return f"removed {fill}" if removed else f"no {fill}: nothing to remove"


async def fill_local(directory: str, p: FillParams) -> ActionResult:
    message = await asyncio.to_thread(_fill_local, directory, p)
    return ActionResult(ok=True, message=message)


async def unfill_local(directory: str) -> ActionResult:
    message = await asyncio.to_thread(_unfill_local, directory)
    return ActionResult(ok=True, message=message)


# -- in a pod (commands run by exec) ----------------------------------------------------------
# Every script takes its values as positional arguments ("$1", "$2"), never spliced into the
# script text, so a path cannot turn into shell code. POSIX sh and df -P, as busybox has them.

_CLEAR = (
    'f="$1/' + FILL_FILE + '"; '
    'if [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; then '
    'echo "$f is not a regular file: not the fill file, left alone" >&2; exit 3; fi; '
    'if [ -f "$f" ]; then rm -f "$f" && echo removed; else echo absent; fi'
)
_FILL = (
    'f="$1/' + FILL_FILE + '"; fallocate -l "$2" "$f" 2>/dev/null || head -c "$2" /dev/zero > "$f"'
)


def clear_argv(directory: str) -> list[str]:
    """Removes the fill file; prints `removed` or `absent`."""
    return ["sh", "-c", _CLEAR, "sh", directory]


def df_argv(directory: str) -> list[str]:
    return ["df", "-Pk", directory]


def du_argv(directory: str) -> list[str]:
    return ["du", "-sk", directory]


def fill_argv(directory: str, nbytes: int) -> list[str]:
    return ["sh", "-c", _FILL, "sh", directory, str(nbytes)]


def parse_df(out: str) -> Usage:
    """`df -Pk DIR`'s answer as a filesystem Usage (1024-byte blocks)."""
    for line in reversed(out.strip().splitlines()):
        tokens = line.split()
        pct = next((i for i, t in enumerate(tokens) if t.endswith("%") and t[:-1].isdigit()), None)
        if pct is not None and pct >= 3 and all(t.isdigit() for t in tokens[pct - 3 : pct]):
            _, used, available = (int(t) * 1024 for t in tokens[pct - 3 : pct])
            return Usage(used=used, size=used + available, available=available)
    raise PluginError(f"cannot read df's answer: {out.strip()[:200]!r}")


def parse_du(out: str) -> int:
    """`du -sk DIR`'s answer in bytes."""
    first = out.strip().split(maxsplit=1)
    if not first or not first[0].isdigit():
        raise PluginError(f"cannot read du's answer: {out.strip()[:200]!r}")
    return int(first[0]) * 1024
