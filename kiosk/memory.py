"""The service's memory between citizens: what it holds, giving freed native memory back, and a
ceiling that restarts the service at idle before a slow growth becomes an out-of-memory on the Pi.

``MemoryGuard.idle`` runs on the main loop's thread between two turns while the session is idle,
so a restart it asks for can never cut a citizen's session short. With ``KIOSK_TRACEMALLOC=DIR``
the service also traces Python allocations and dumps a snapshot (and a line of the native heap's
numbers) after every session, for ``benchmarks/endurance.py --diff`` to find what grows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import logging
import os
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("kiosk.memory")

TRACE_ENV = "KIOSK_TRACEMALLOC"
TRACE_FRAMES = 12
TRIM_ENV = "KIOSK_MALLOC_TRIM"


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process in MB (from /proc; 0.0 where there is no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost",
        )
    ]  # fmt: skip


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_LIBC = _libc()


def malloc_trim() -> bool:
    """Give the free memory at the top of glibc's heaps back to the system (False: not glibc)."""
    fn = getattr(_LIBC, "malloc_trim", None)
    if fn is None:
        return False
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    fn(0)
    return True


def native_heap() -> dict[str, float] | None:
    """glibc's heap in MB (mallinfo2): in use by malloc's callers, free inside the arenas, mmapped."""
    fn = getattr(_LIBC, "mallinfo2", None)
    if fn is None:
        return None
    fn.argtypes, fn.restype = [], _MallInfo2
    mi = fn()
    mb = 1024 * 1024
    return {
        "in_use_mb": round((mi.uordblks + mi.hblkhd) / mb, 2),
        "free_in_arenas_mb": round(mi.fordblks / mb, 2),
        "mmapped_mb": round(mi.hblkhd / mb, 2),
    }


def sqlite_mb() -> float:
    """Memory SQLite's library holds (page caches of every connection), in MB; -1 when unknown."""
    name = ctypes.util.find_library("sqlite3")
    try:
        fn = ctypes.CDLL(name).sqlite3_memory_used if name else None  # the copy _sqlite3 loaded
    except (OSError, AttributeError):
        fn = None
    if fn is None:
        return -1.0
    fn.restype = ctypes.c_int64
    return round(fn() / 2**20, 3)


def default_probes() -> dict[str, Callable[[], float]]:
    """What any Python service may pile up: objects the collector tracks, threads, SQLite's caches."""
    import threading

    return {
        "gc_objects": lambda: len(gc.get_objects()),
        "threads": threading.active_count,
        "sqlite_mb": sqlite_mb,
    }


@dataclass
class Exceeded:
    """The reason the guard asks for a restart (for the log and the audit row)."""

    rss_mb: float
    ceiling_mb: float
    sessions: int

    def detail(self) -> str:
        return f"rss={self.rss_mb:.1f}MB ceiling={self.ceiling_mb:.0f}MB sessions={self.sessions}"


class MemoryGuard:
    """Checks memory once each time the session is back in idle (and after ``every_s`` of idle).

    ``ceiling_mb`` 0 turns the restart off (the numbers are still reported). ``probes`` name the
    sizes of the service's own collections (what a candidate leak would fill), logged with the
    snapshots when tracing.
    """

    def __init__(
        self,
        ceiling_mb: float = 0.0,
        *,
        trim: bool = True,
        every_s: float = 300.0,
        trace_dir: str | Path | None = None,
        probes: dict[str, Callable[[], float]] | None = None,
        rss: Callable[[], float] = rss_mb,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling_mb = float(ceiling_mb)
        self.trim = trim
        self.every_s = every_s
        self.probes = {**default_probes(), **(probes or {})}
        self._rss = rss
        self._clock = clock
        self._seen_sessions: int | None = None
        self._start_sessions = 0
        self._last_check = clock()
        self.last_rss_mb = rss()
        self.peak_rss_mb = self.last_rss_mb
        self.trace_dir = Path(trace_dir) if trace_dir else None
        if self.trace_dir is not None:
            self.trace_dir.mkdir(parents=True, exist_ok=True)
            if not tracemalloc.is_tracing():
                tracemalloc.start(TRACE_FRAMES)

    @classmethod
    def from_env(cls, ceiling_mb: float, **kw: Any) -> MemoryGuard:
        """The guard with the tracing directory of ``KIOSK_TRACEMALLOC`` (unset: no tracing);
        ``KIOSK_MALLOC_TRIM=0`` leaves glibc's free memory in its heaps (to measure the trim)."""
        trim = os.environ.get(TRIM_ENV, "1").strip() != "0"
        return cls(ceiling_mb, trace_dir=os.environ.get(TRACE_ENV) or None, trim=trim, **kw)

    def idle(self, sessions: int) -> Exceeded | None:
        """Call between main-loop turns while the session is idle: after each session (and every
        ``every_s`` of idle) trim, trace, and return the reason to restart if RSS is over the ceiling."""
        now = self._clock()
        if sessions == self._seen_sessions and now - self._last_check < self.every_s:
            return None
        first = self._seen_sessions is None
        if first:
            self._start_sessions = sessions
        self._seen_sessions, self._last_check = sessions, now
        if self.trim:
            malloc_trim()
        rss = self.last_rss_mb = self._rss()
        self.peak_rss_mb = max(self.peak_rss_mb, rss)
        if self.trace_dir is not None and not first:
            self._dump(sessions, rss)
        # only after a session since the start: a service above its ceiling with nobody served yet
        # would restart again and again
        if self.ceiling_mb > 0 and rss > self.ceiling_mb and sessions > self._start_sessions:
            return Exceeded(round(rss, 1), self.ceiling_mb, sessions)
        return None

    def status(self) -> dict[str, Any]:
        """For the service's ``status``: the RSS now, its peak at idle, the ceiling (0: none)."""
        now = self._rss()
        self.peak_rss_mb = max(self.peak_rss_mb, now)
        return {
            "rss_mb": round(now, 1),
            "peak_idle_rss_mb": round(self.peak_rss_mb, 1),
            "ceiling_mb": self.ceiling_mb,
        }

    def _dump(self, sessions: int, rss: float) -> None:
        assert self.trace_dir is not None
        tracemalloc.take_snapshot().dump(str(self.trace_dir / f"session-{sessions:04d}.snap"))
        traced, _peak = tracemalloc.get_traced_memory()
        row: dict[str, Any] = {"session": sessions, "rss_mb": round(rss, 2)}
        row["python_mb"] = round(traced / 2**20, 2)
        row["native"] = native_heap()
        for name, fn in self.probes.items():
            try:
                row[name] = fn()
            except Exception as exc:  # noqa: BLE001 - a probe must not stop the service
                row[name] = f"error: {exc}"
        with open(self.trace_dir / "probes.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        types = Counter(type(o).__qualname__ for o in gc.get_objects())  # what the objects are
        path = self.trace_dir / f"session-{sessions:04d}.types.json"
        path.write_text(json.dumps(dict(types.most_common(200))))
