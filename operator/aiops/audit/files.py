"""The file-system steps the audit log relies on: durable directories, locked reads, and
finding the last line of a file without reading all of it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

DIR_MODE = 0o750
FILE_MODE = 0o640
_CHUNK = 64 * 1024


def fsync_dir(path: Path) -> None:
    """Make a directory's entries durable: a new file or subdirectory in it survives a crash
    only once the directory itself is synced, whatever was done to the file."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """`mkdir -p`, syncing the parent of every directory it creates."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it; it synced the parent
        fsync_dir(directory.parent)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def last_newline(fd: int, end: int) -> int:
    """The offset of the last b"\\n" before `end`, or -1; reads backwards a chunk at a time,
    so an append costs the same on a long log as on a short one."""
    while end > 0:
        start = max(end - _CHUNK, 0)
        found = os.pread(fd, end - start, start).rfind(b"\n")
        if found >= 0:
            return start + found
        end = start
    return -1


def read_lines(path: Path) -> tuple[list[bytes], bytes]:
    """The complete lines of a file (without newlines) and whatever follows the last newline,
    read under a shared lock so that no append is seen half-written."""
    with path.open("rb") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_SH)
        content = file.read()
    *lines, rest = content.split(b"\n")
    return lines, rest
