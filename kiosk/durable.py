"""Writes that survive a power cut: after a crash a file is the old or the new one, never half.

Temp file in the same directory, fsync, rename over the target, fsync the directory. The store,
the updater, the photo writer and the console's config editor all rely on this. Logs that only
grow (the console's audit, both sides) append a line and fsync instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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


def append_line(path: str | Path, line: str, mode: int = 0o600) -> None:
    """Append ``line`` and a newline to ``path`` (created with ``mode``) and fsync before returning:
    an entry reported written is on disk. A crash during the write can leave a torn last line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
