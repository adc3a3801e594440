"""The session's hold on updates: a shared flock on ``<state_dir>/update.inhibit``.

A lock rather than a bare marker file: the kernel drops it when the session process dies, so a
crash or power cut never leaves a stale marker that blocks updates forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

INHIBIT_NAME = "update.inhibit"


def inhibit_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / INHIBIT_NAME


@contextlib.contextmanager
def inhibit_updates(state_dir: str | Path) -> Iterator[Path]:
    """Hold off updates while the block runs (one citizen's session).

    Waits only while the updater is between its last check and the restart command (a moment).
    """
    path = inhibit_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # shared: several holders (UI + session) may overlap
        yield path
    finally:
        os.close(fd)  # releases the lock


def session_running(state_dir: str | Path) -> bool:
    """True while any process holds the inhibit lock (the updater must wait)."""
    path = inhibit_path(state_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextlib.contextmanager
def exclusive_update(state_dir: str | Path) -> Iterator[bool]:
    """Hold the inhibit lock exclusively across switch + restart; yields False if a session holds it.

    Opened read-only: the updater runs without capabilities and the lock file belongs to the
    service user (tmpfiles.d creates it world-readable). No file means no session has ever run.
    """
    try:
        fd = os.open(inhibit_path(state_dir), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
