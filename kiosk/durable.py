"""Writes that survive a power cut: after a crash a file is the old or the new one, never half.

Temp file in the same directory, fsync, rename over the target, fsync the directory. The store,
the updater, the photo writer and the console's config editor all rely on this. Logs that only
grow (the console's audit, both sides) append a line and fsync instead, and are read back a
line at a time: a line torn by a crash is counted and skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | Path, data: bytes, mode: int = 0o600) -> Path:
    """Replace ``path`` with ``data`` atomically and durably; the temp file never outlives a failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def make_dirs(path: str | Path, mode: int = 0o700) -> None:
    """Create ``path`` and any missing parents owner-only (``mode``), each made durable in its
    parent: state kept in them must not vanish with a folder a power cut forgot."""
    path = Path(path)
    missing = []
    while not path.is_dir():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=mode)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made meanwhile by someone else: theirs, with their mode
        fsync_dir(folder.parent)


def append_line(path: str | Path, line: str, mode: int = 0o600) -> None:
    """Append ``line`` and a newline to ``path`` (created with ``mode``, in folders made 0700) and
    fsync before returning: an entry reported written is on disk. A crash during the write can leave
    a torn last line; the next append starts a fresh line after it rather than gluing on to it."""
    path = Path(path)
    make_dirs(path.parent)
    data = (line + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, mode)
        created = True
    except FileExistsError:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        created = False
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a torn tail stays one damaged line of its own
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


class JsonLines(NamedTuple):
    """What a JSON-lines file holds: the values of its good lines, in order, and how many lines
    could not be read (torn by a power cut, or not JSON)."""

    values: list[Any]
    damaged: int


def read_json_lines(path: str | Path) -> JsonLines:
    """Read a file that ``append_line`` wrote, line by line: a damaged line is counted and skipped,
    never the end of the good lines after it. A missing file is empty."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return JsonLines([], 0)
    values: list[Any] = []
    damaged = 0
    for line in raw.split(b"\n"):  # not splitlines(): U+2028 inside a string is not a line end
        if not line.strip():
            continue
        try:
            values.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, ValueError, RecursionError):
            damaged += 1
    return JsonLines(values, damaged)
