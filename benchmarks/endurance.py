"""Endurance: N sessions back to back through a real `kiosk run --sim`, as a busy hall would use it.

The service runs as its own process (temporary state directory and configuration, a free port).
Each session is driven through the UI's ``/event`` endpoint like the touchscreen does (start ->
choose -> consent -> requirements -> guided by the simulated citizen -> review -> accept -> done
-> idle), with the screen's streams open (the state as Server-Sent Events for the whole run, the
live picture as MJPEG while the camera is live). After each session, back at idle, the process's
RSS, open file descriptors and threads are read from /proc, with the session's wall time.

Printed as JSON: one row per session; the RSS slope after the warm-up (least squares, MB per
session), fd/thread min and max, the last session's time against the tenth's, and whether every
session issued exactly one number and the store holds as many.

Variants:
  --authority platform   numbers issued by a reference platform started here (uploads, outbox)
  --printer-faults N     the virtual printer's roll runs out in every N-th slip (kiosk.sim.printer,
                         KIOSK_SIM_PRINTER_FAULT_EVERY); the number is issued, the slip queued
  --tracemalloc DIR      the service dumps a tracemalloc snapshot at idle after every session
                         (KIOSK_TRACEMALLOC=DIR, kiosk.memory); diff them with --diff A B
  --monitor              fleet monitoring on, to a mosquitto started here on loopback (as a hall's
                         terminal runs; without it [monitor] is off and paho is never imported)

Usage: python benchmarks/endurance.py [--sessions N] [--warmup W] [--authority local|platform]
       [--printer-faults N] [--monitor] [--env K=V ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE = 4096


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_sample(pid: int) -> dict[str, float]:
    """RSS (MB), open file descriptors and threads of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 2),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
    }


def memory_split(pid: int) -> dict[str, float]:
    """Where the RSS is (MB): anonymous (heaps, arrays, interpreters' arenas) against file-backed
    (libraries, mapped models), and PSS (shared pages split among the processes using them)."""
    fields = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0]) / 1024
    names = {"Rss": "rss_mb", "Pss": "pss_mb", "Anonymous": "anon_mb", "Pss_File": "pss_file_mb"}
    out = {v: round(fields[k], 1) for k, v in names.items() if k in fields}
    if "rss_mb" in out and "anon_mb" in out:
        out["file_mb"] = round(out["rss_mb"] - out["anon_mb"], 1)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (its threads included), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median(xs: list[float]) -> float | None:
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else None


def slope(ys: list[float]) -> float:
    """Least-squares slope of ys over 0..n-1 (per session)."""
    n = len(ys)
    if n < 2:
        return 0.0
    mx = (n - 1) / 2
    my = sum(ys) / n
    num = sum((i - mx) * (y - my) for i, y in enumerate(ys))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den


class Ui:
    """The touchscreen's side: events posted to /event, the state read from /state.json."""

    def __init__(self, port: int) -> None:
        self.port = port

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"} if body else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def post(self, name: str, **fields: str) -> None:
        status, body = self._request("POST", "/event", json.dumps({"name": name, **fields}).encode())
        if status != 202:
            raise RuntimeError(f"/event {name}: HTTP {status} {body[:200]!r}")

    def state(self) -> dict[str, Any]:
        status, body = self._request("GET", "/state.json")
        if status != 200:
            raise RuntimeError(f"/state.json: HTTP {status}")
        return json.loads(body)

    def wait(self, states: tuple[str, ...], timeout: float) -> dict[str, Any]:
        end = time.monotonic() + timeout
        st: dict[str, Any] = {}
        while time.monotonic() < end:
            st = self.state()
            if st.get("state") in states:
                return st
            time.sleep(0.05)
        raise TimeoutError(f"waited {timeout:.0f} s for {states}; the screen shows {st.get('state')}")


class Stream:
    """A screen's long-lived GET (SSE or MJPEG) read and discarded on its own thread."""

    def __init__(self, port: int, path: str) -> None:
        self.bytes = 0
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._conn.request("GET", path)
        self._resp = self._conn.getresponse()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            while not self._stop.is_set():
                chunk = self._resp.read1(65536) if hasattr(self._resp, "read1") else self._resp.read(4096)
                if not chunk:
                    return
                self.bytes += len(chunk)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            if self._conn.sock is not None:
                self._conn.sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()
        self._thread.join(5)


def write_config(
    path: Path, args: argparse.Namespace, platform_url: str | None, broker: str | None = None
) -> None:
    lines = [
        "[session]",
        f"steady_s = {args.steady_s}",
        f"countdown_s = {args.countdown_s}",
        "done_s = 30.0",  # the benchmark touches "accept" on the result screen
        "",
        "[receipt]",
        'printer = "virtual"',
    ]
    if platform_url:
        lines += ['authority = "platform"', f'platform_url = "{platform_url}"', "platform_timeout_s = 5.0"]
    if broker:
        lines += ["", "[monitor]", f'broker = "{broker}"', 'hall = "endurance"', "poll_s = 1.0"]
    path.write_text("\n".join(lines) + "\n")


def start_platform(data: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "platform", "serve", "--port", str(port), "--data", str(data)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return proc, url
        if proc.poll() is not None:
            raise RuntimeError(f"platform did not start: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.1)
    raise RuntimeError("platform did not start in 30 s")


def start_broker(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """mosquitto on a free loopback port, anonymous, nothing kept (what the service publishes to)."""
    import shutil

    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(exe):
        raise RuntimeError("--monitor needs mosquitto (apt-get install mosquitto)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    with open(directory / "mosquitto.log", "ab") as log:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=log)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return proc, f"mqtt://127.0.0.1:{port}"
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"mosquitto did not listen (log {directory / 'mosquitto.log'})")


def store_counts(state_dir: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{state_dir / 'kiosk.sqlite3'}?mode=ro", uri=True)
    try:
        q = {
            "numbers": "SELECT count(*) FROM numbers",
            "sessions": "SELECT count(*) FROM sessions",
            "print_jobs_printed": "SELECT count(*) FROM print_jobs WHERE state = 'printed'",
            "print_jobs_queued": "SELECT count(*) FROM print_jobs WHERE state != 'printed'",
        }
        out = {k: int(db.execute(v).fetchone()[0]) for k, v in q.items()}
        with contextlib.suppress(sqlite3.OperationalError):
            out["outbox_confirmed"] = int(
                db.execute("SELECT count(*) FROM outbox WHERE state = 'confirmed'").fetchone()[0]
            )
            out["outbox_pending"] = int(
                db.execute("SELECT count(*) FROM outbox WHERE state != 'confirmed'").fetchone()[0]
            )
        return out
    finally:
        db.close()


def one_session(ui: Ui, port: int, timeout: float) -> dict[str, Any]:
    """One citizen from the first touch back to idle; the screen's MJPEG is open while live."""
    ui.post("start")
    ui.wait(("choose",), 20)
    ui.post("choose", profile="id_card", city="shenzhen")
    ui.wait(("consent",), 20)
    ui.post("consent")
    ui.wait(("requirements",), 20)
    ui.post("accept")
    ui.wait(("guidance", "countdown", "capture", "review"), 20)
    preview = Stream(port, "/preview.mjpg")  # the live picture while the citizen is guided
    try:
        st = ui.wait(("review", "idle", "failsafe"), timeout)
    finally:
        preview.close()
    if st["state"] != "review":
        raise RuntimeError(f"no photo: the session went to {st['state']} ({st.get('message')})")
    ui.post("accept")
    st = ui.wait(("done", "failsafe", "idle"), 60)
    if st["state"] != "done":
        raise RuntimeError(f"hand-over ended in {st['state']} ({st.get('message')})")
    result = st.get("result") or {}
    ui.post("accept")
    ui.wait(("idle",), 20)
    return {"number": result.get("number"), "printed": bool(result.get("printed")), "retakes": 0}


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="kiosk-endurance-"))
    state_dir = tmp / "state"
    platform = None
    url = None
    if args.authority == "platform":
        platform, url = start_platform(tmp / "platform")
    broker, broker_url = start_broker(tmp / "broker") if args.monitor else (None, None)
    cfg_path = tmp / "kiosk.toml"
    write_config(cfg_path, args, url, broker_url)
    port = free_port()
    env = {**os.environ, "KIOSK_STATE_DIR": str(state_dir), "KIOSK_CONFIG": str(cfg_path)}
    env.pop("NOTIFY_SOCKET", None)
    if args.printer_faults:
        env["KIOSK_SIM_PRINTER_FAULT_EVERY"] = str(args.printer_faults)
    if args.tracemalloc:
        env["KIOSK_TRACEMALLOC"] = str(Path(args.tracemalloc).resolve())
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    log = open(tmp / "service.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "run", "--sim", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    rows: list[dict[str, Any]] = []
    error = None
    sse = None
    split: dict[str, float] = {}
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("kiosk: UI on"):
            raise RuntimeError(f"service did not start: {line!r} (log {tmp / 'service.log'})")
        ui = Ui(port)
        sse = Stream(port, "/events")  # the screen's state stream, open all the time
        ui.wait(("idle",), 30)
        base = proc_sample(proc.pid)
        for i in range(1, args.sessions + 1):
            t0, cpu0 = time.monotonic(), cpu_seconds(proc.pid)
            try:
                res = one_session(ui, port, args.session_timeout)
            except (RuntimeError, TimeoutError) as exc:
                error = f"session {i}: {exc}"
                break
            except KeyboardInterrupt:  # Ctrl-C: the sessions so far are still a measurement
                error = f"interrupted in session {i}"
                break
            dt, cpu = time.monotonic() - t0, cpu_seconds(proc.pid) - cpu0
            time.sleep(args.settle_s)  # the service's idle pass (memory check, trim) after the session
            sample = proc_sample(proc.pid)
            rows.append({"session": i, "s": round(dt, 2), "cpu_s": round(cpu, 2), **sample, **res})
            if args.progress:
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            if proc.poll() is not None:
                error = f"service exited with {proc.returncode} after session {i}"
                break
        split = memory_split(proc.pid) if proc.poll() is None else {}
        if args.authority == "platform" and error is None:
            # what the background pass does every minute, once more before the counts are read
            from kiosk.service_api import call

            with contextlib.suppress(Exception):
                call(state_dir / "kiosk.sock", "console.queue", timeout=300.0, action="retry")
    finally:
        if sse is not None:
            sse.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
        if platform is not None:
            platform.terminate()
            platform.wait(10)
        if broker is not None:
            broker.terminate()
            broker.wait(10)
    summary = summarise(args, rows, base if rows else {}, store_counts(state_dir), error, tmp)
    summary["memory_at_end"] = split
    return summary


def summarise(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    base: dict[str, Any],
    store: dict[str, int],
    error: str | None,
    tmp: Path,
) -> dict[str, Any]:
    after = [r for r in rows if r["session"] > args.warmup]
    rss = [r["rss_mb"] for r in after]
    fds = [r["fds"] for r in rows]
    threads = [r["threads"] for r in rows]
    numbers = [r["number"] for r in rows]
    times = [r["s"] for r in rows]
    tenth = times[9] if len(times) >= 10 else None
    # session times vary with the simulated citizen and the machine's other load: also compare
    # medians of ten around each end, and the service's own CPU seconds per session
    early = median(times[5:15]) if len(times) >= 15 else None
    late = median(times[-10:]) if len(times) >= 20 else None
    cpu = [r["cpu_s"] for r in rows if "cpu_s" in r]
    cpu_early = median(cpu[5:15]) if len(cpu) >= 15 else None
    cpu_late = median(cpu[-10:]) if len(cpu) >= 20 else None
    one_each = all(numbers) and len(set(numbers)) == len(numbers)
    return {
        "sessions": len(rows),
        "requested": args.sessions,
        "authority": args.authority,
        "printer_faults_every": args.printer_faults,
        "monitor": bool(getattr(args, "monitor", False)),
        "error": error,
        "warmup": args.warmup,
        "idle_before_first": base,
        "rss_slope_mb_per_session": round(slope(rss), 4) if rss else None,
        "rss_after_warmup_mb": [rss[0], rss[-1]] if rss else None,
        "fds": [min(fds), max(fds)] if fds else None,
        "threads": [min(threads), max(threads)] if threads else None,
        "tenth_s": tenth,
        "last_s": times[-1] if times else None,
        "last_over_tenth": round(times[-1] / tenth, 2) if tenth else None,
        "median_late_over_early": round(late / early, 2) if early and late else None,
        "cpu_s_tenth_last": [cpu[9], cpu[-1]] if len(cpu) >= 10 else None,
        "cpu_median_late_over_early": round(cpu_late / cpu_early, 2) if cpu_early and cpu_late else None,
        "one_number_per_session": one_each,
        "printed": sum(1 for r in rows if r["printed"]),
        "store": store,
        "store_matches": one_each and store.get("numbers") == len(rows),
        "state_dir": str(tmp),
        "rows": rows,
    }


def diff_snapshots(a: str, b: str, top: int) -> list[str]:
    """The tracemalloc statistics that grew most between two snapshots the service dumped."""
    import tracemalloc

    if a.endswith(".types.json"):  # objects by type (the service's gc census at the same idle moments)
        t1, t2 = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
        grown = sorted(((t2.get(k, 0) - t1.get(k, 0), k) for k in set(t1) | set(t2)), reverse=True)
        return [f"{d:+8d}  {k}" for d, k in grown[:top]]
    s1 = tracemalloc.Snapshot.load(a)
    s2 = tracemalloc.Snapshot.load(b)
    stats = s2.compare_to(s1, "traceback")
    total = sum(s.size_diff for s in stats)
    out = [f"total {total / 1024:+.1f} KiB"]
    for s in stats[:top]:
        frames = " <- ".join(f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in s.traceback[:4])
        out.append(f"{s.size_diff / 1024:+9.1f} KiB {s.count_diff:+6d} blocks  {frames}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=60)
    p.add_argument("--warmup", type=int, default=7, help="sessions left out of the slope")
    p.add_argument("--authority", choices=("local", "platform"), default="local")
    p.add_argument("--printer-faults", type=int, default=0, metavar="N", help="paper out in every N-th slip")
    p.add_argument("--steady-s", type=float, default=0.3)
    p.add_argument("--countdown-s", type=float, default=0.5)
    p.add_argument("--settle-s", type=float, default=0.5, help="idle time before each sample")
    p.add_argument("--session-timeout", type=float, default=120.0)
    p.add_argument("--monitor", action="store_true", help="fleet monitoring on, to a local mosquitto")
    p.add_argument("--tracemalloc", metavar="DIR", help="the service dumps snapshots here at idle")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="extra service environment")
    p.add_argument("--diff", nargs=2, metavar=("A", "B"), help="diff two tracemalloc snapshots and exit")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--from-log", metavar="FILE", help="summarise the --progress rows of a cut-short run")
    p.add_argument("--progress", action="store_true", help="each row on stderr as it is measured")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    if args.diff:
        print("\n".join(diff_snapshots(*args.diff, args.top)))
        return 0
    if args.from_log:  # the rows --progress wrote, of a run cut short: the same summary without the store
        lines = Path(args.from_log).read_text().splitlines()
        rows = [json.loads(x) for x in lines if x.startswith('{"session"')]
        args.sessions = len(rows)
        summary = summarise(args, rows, {}, {}, "summarised from a log", Path(args.from_log))
        print(json.dumps(summary, indent=1))
        return 0
    if args.sessions < 1:
        p.error("--sessions must be at least 1")
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0 if result["error"] is None and result["store_matches"] else 1


if __name__ == "__main__":
    sys.exit(main())
