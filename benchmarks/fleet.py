"""Fleet monitoring at province scale: N simulated terminals against one local Eclipse Mosquitto.

Each terminal is a real MQTT client (paho-mqtt, MQTT 3.1.1) with its own client id
(<hall>/<station>) and its own last will (retained ``offline``), publishing what kiosk.monitor
publishes: ``online`` and its state (the real state JSON, kiosk.monitor.state.clean) retained.
They are lightweight: a few worker processes each drive a few hundred clients from one selector
loop (no thread per client). Measured:

  connect      time from the first connect until `kiosk fleet watch --json` (the real command, a
               new subscriber reading the retained messages) lists every terminal online, and how
               long that one command takes with N terminals
  kill         a terminal's connection dropped without DISCONNECT (what SIGKILL does to a process):
               time until a watcher sees it offline (the broker's last will)
  hang         a terminal that stops talking with its connection open (a frozen terminal, a cut
               cable): time until it is seen offline (the broker's keepalive, 1.5 x keepalive)
  burst        every terminal publishes --burst states at once: messages per second through the
               broker to one watcher
  idle         --idle seconds of the steady fleet (each terminal's state every --state-every s)
  broker_cpu   the broker's CPU seconds in each phase, from /proc/<pid>/stat (utime + stime), and
               its RSS at the end

Printed as one JSON document. Usage:
  python benchmarks/fleet.py [--terminals 1000] [--workers 4] [--halls 50] [--keepalive 10]
         [--burst 5] [--idle 20] [--state-every 60] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from kiosk.monitor.state import clean

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def terminal_state(rng: random.Random, seq: int) -> bytes:
    """A realistic state JSON (the same schema and size as a real terminal's)."""
    snap = {
        "version": "0.1.0", "release": "1.4.2",
        "update": {"phase": "idle", "last": "committed", "last_at": 1_790_000_000},
        "uptime_s": 3600 + seq, "session": rng.choice(["idle", "idle", "guidance", "review"]),
        "camera_ok": True, "lights_ok": True,
        "printer": {"paper": rng.choice(["ok"] * 18 + ["low", "out"]), "fault": None},
        "queued_prints": 0, "outbox": {"backlog": rng.randint(0, 3), "oldest_s": rng.randint(0, 600)},
        "platform_reachable": True, "numbers_today": rng.randint(0, 200),
        "sessions_today": {"issued": rng.randint(0, 200), "abandoned": rng.randint(0, 20)},
        "store": "ok", "disk_free_mb": 20000, "cpu_temp_c": 52.0,
        "monitor": {"dropped": 0, "reconnects": 0}, "at": int(time.time()),
    }
    return json.dumps(clean(snap), separators=(",", ":")).encode()


# --- the terminals: a worker process drives its clients from one selector loop --------------------


def worker(port: int, ids: list[str], keepalive: int, state_every: float, conn: Any) -> None:
    rng = random.Random(hash(ids[0]) & 0xFFFF)
    states = [terminal_state(rng, i) for i in range(64)]  # made once: the clients' CPU is not the measure
    clients: dict[str, mqtt.Client] = {}
    hung: set[str] = set()
    sel = selectors.DefaultSelector()
    seq = 0

    def on_connect(c: mqtt.Client, cid: str, _f: Any, reason: Any, _p: Any) -> None:
        c.publish(f"kiosk/{cid}/availability", b"online", qos=1, retain=True)
        c.publish(f"kiosk/{cid}/state", terminal_state(rng, 0), qos=1, retain=True)

    for cid in ids:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, userdata=cid,
                        protocol=mqtt.MQTTv311, clean_session=True)
        c.will_set(f"kiosk/{cid}/availability", b"offline", qos=1, retain=True)
        c.on_connect = on_connect
        c.max_inflight_messages_set(100)
        c.connect("127.0.0.1", port, keepalive=keepalive)
        sel.register(c.socket(), selectors.EVENT_READ, cid)
        clients[cid] = c
    conn.send(("connected", len(clients)))
    next_misc = next_state = time.monotonic()
    while True:
        for key, _ in sel.select(0.02):
            c = clients.get(key.data)
            if c is not None and key.data not in hung:
                c.loop_read()
        for cid, c in clients.items():
            if cid not in hung and c.want_write():
                c.loop_write()
        now = time.monotonic()
        if now >= next_misc:  # pings (keepalive) and retries
            for cid, c in clients.items():
                if cid not in hung:
                    c.loop_misc()
            next_misc = now + 0.5
        if now >= next_state:  # the steady fleet: each terminal's state every state_every s
            seq += 1
            for cid, c in clients.items():
                if cid not in hung and rng.random() < 1.0 / max(1.0, state_every):
                    c.publish(f"kiosk/{cid}/state", rng.choice(states), qos=1, retain=True)
            next_state = now + 1.0
        while conn.poll():
            cmd, arg = conn.recv()
            if cmd == "kill" and arg in clients:  # the connection dropped without a DISCONNECT
                c = clients.pop(arg)
                sel.unregister(c.socket())
                c.socket().close()
            elif cmd == "hang" and arg in clients:  # silent, connection still open
                hung.add(arg)
            elif cmd == "burst":
                for cid, c in clients.items():
                    if cid not in hung:
                        for _ in range(arg):
                            c.publish(f"kiosk/{cid}/state", rng.choice(states), qos=1, retain=True)
                conn.send(("burst-sent", len(clients) * arg))
            elif cmd == "stop":
                for c in clients.values():
                    with contextlib.suppress(Exception):
                        c.disconnect()
                conn.send(("stopped", 0))
                return


# --- the watcher side ------------------------------------------------------------------------------


class Watcher:
    """One subscriber to kiosk/#: availability per terminal, and a message count."""

    def __init__(self, port: int) -> None:
        self.online: dict[str, bool] = {}
        self.changed_at: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-watcher")
        self.c.on_connect = lambda c, *_: c.subscribe("kiosk/#", qos=1)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()

    def _on_message(self, _c: Any, _u: Any, m: Any) -> None:
        with self.lock:
            self.count += 1
            if m.topic.endswith("/availability"):
                cid = m.topic[len("kiosk/"):-len("/availability")]
                self.online[cid] = m.payload == b"online"
                self.changed_at[cid] = time.monotonic()

    def wait(self, cond: Any, timeout: float) -> float | None:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with self.lock:
                if cond():
                    return time.monotonic() - start
            time.sleep(0.01)
        return None


def fleet_watch_json(port: int) -> tuple[dict[str, Any], float]:
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "fleet", "watch", "--json", "--broker", f"mqtt://127.0.0.1:{port}",
         "--wait", "30"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "KIOSK_CONFIG": os.devnull},
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return json.loads(out.stdout), time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--terminals", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--halls", type=int, default=50)
    ap.add_argument("--keepalive", type=int, default=10)
    ap.add_argument("--burst", type=int, default=5, help="states each terminal publishes at once")
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of steady fleet measured")
    ap.add_argument("--state-every", type=float, default=60.0)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.terminals + 256)), hard))

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="kiosk-fleet-bench-"))
    (work / "mosquitto.conf").write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 10000\n"
    )
    broker = subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    result: dict[str, Any] = {"terminals": args.terminals, "workers": args.workers, "halls": args.halls,
                              "keepalive_s": args.keepalive, "mosquitto": subprocess.run(
                                  [mosquitto, "-h"], capture_output=True, text=True).stdout.splitlines()[0]}
    procs: list[Any] = []
    pipes: list[Any] = []
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        watcher = Watcher(port)
        time.sleep(0.3)
        ids = [f"hall{i % args.halls:03d}/{i // args.halls + 1:03d}" for i in range(args.terminals)]
        chunks = [ids[i :: args.workers] for i in range(args.workers)]
        cpu0 = proc_cpu_s(broker.pid)
        t0 = time.monotonic()
        ctx = mp.get_context("fork")
        for chunk in chunks:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker, args=(port, chunk, args.keepalive, args.state_every, child),
                            daemon=True)
            p.start()
            procs.append(p)
            pipes.append(parent)
        for pipe in pipes:
            pipe.recv()
        workers_connected = time.monotonic() - t0
        connected = watcher.wait(lambda: sum(watcher.online.values()) >= args.terminals, 120)
        connected = None if connected is None else time.monotonic() - t0
        # the real command, until it lists every terminal online
        while True:
            snap, took = fleet_watch_json(port)
            online = sum(1 for r in snap["terminals"] if r["online"])
            if online >= args.terminals or time.monotonic() - t0 > 180:
                break
        shown = time.monotonic() - t0
        cpu_connect = proc_cpu_s(broker.pid) - cpu0
        result["connect"] = {
            "workers_connected_s": round(workers_connected, 2),
            "all_online_at_watcher_s": None if connected is None else round(connected, 2),
            "fleet_watch_json_shows_all_s": round(shown, 2),
            "fleet_watch_json_listed": len(snap["terminals"]),
            "fleet_watch_json_online": online,
            "one_fleet_watch_json_command_s": round(took, 2),
            "broker_cpu_s": round(cpu_connect, 2),
        }

        # a killed terminal: its connection closed without DISCONNECT -> the will at once
        victim = ids[7]
        pipes[7 % args.workers].send(("kill", victim))
        killed = watcher.wait(lambda: watcher.online.get(victim) is False, 30)
        snap, _ = fleet_watch_json(port)
        row = next(r for r in snap["terminals"] if f"{r['hall']}/{r['station']}" == victim)
        first = snap["terminals"][0] is row and row["online"] is False
        result["kill"] = {"offline_seen_s": None if killed is None else round(killed, 3),
                          "fleet_watch_lists_it_first": first}

        # a hung terminal: silent with its connection open -> the broker's keepalive
        hung = ids[11]
        pipes[11 % args.workers].send(("hang", hung))
        seen = watcher.wait(lambda: watcher.online.get(hung) is False, 6 * args.keepalive + 30)
        result["hang"] = {"offline_seen_s": None if seen is None else round(seen, 2),
                          "bound_1_5_keepalive_s": 1.5 * args.keepalive}

        # the steady fleet
        cpu1, n1, t1 = proc_cpu_s(broker.pid), watcher.count, time.monotonic()
        time.sleep(args.idle)
        dt = time.monotonic() - t1
        result["idle"] = {"seconds": round(dt, 1), "messages_per_s": round((watcher.count - n1) / dt, 1),
                          "broker_cpu_percent": round(100 * (proc_cpu_s(broker.pid) - cpu1) / dt, 2)}

        # a burst: every terminal publishes --burst states
        cpu2, n2 = proc_cpu_s(broker.pid), watcher.count
        expected = (args.terminals - 2) * args.burst
        t2 = time.monotonic()
        for pipe in pipes:
            pipe.send(("burst", args.burst))
        for pipe in pipes:
            pipe.recv()
        took = watcher.wait(lambda: watcher.count - n2 >= expected, 120)
        dt = time.monotonic() - t2
        burst_cpu = proc_cpu_s(broker.pid) - cpu2
        result["burst"] = {
            "messages": watcher.count - n2,
            "expected": expected,
            "seconds": round(dt, 2),
            "messages_per_s": round((watcher.count - n2) / dt),
            "complete": took is not None,
            "broker_cpu_s": round(burst_cpu, 2),
            "broker_cpu_us_per_message": round(1e6 * burst_cpu / max(1, watcher.count - n2), 1),
        }
        result["broker_rss_mb"] = round(proc_rss_mb(broker.pid), 1)
        result["broker_cpu_total_s"] = round(proc_cpu_s(broker.pid), 2)
    finally:
        for pipe in pipes:
            with contextlib.suppress(Exception):
                pipe.send(("stop", 0))
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
