"""Session benchmark on the simulated camera with the UI streaming to two local clients (the state
as Server-Sent Events and the live picture as MJPEG), as the touchscreen does.

Measures (goals on the development machine in brackets):
  guidance_fps      frames analysed per second by the guidance loop (track, light, LEDs, prompt)
                    while both streams run; the simulated camera renders as fast as it can and its
                    rendering is counted against the loop                                [>= 30]
  hold_to_photo_s   from the moment every check holds (steady_s and countdown_s set to 0, so
                    the deliberate waits are excluded) to the document photo on screen: the
                    review state received over SSE and /photo.jpg downloaded              [< 1 s]
  peak_rss_mb       peak resident memory of the whole process (models, service, clients) [< 250]

Usage: python benchmarks/session.py [--json] [--seconds S] [--captures N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kiosk.capture.session import State  # noqa: E402
from kiosk.config import load_config  # noqa: E402
from kiosk.service import Service  # noqa: E402


class Clients:
    """An SSE reader and an MJPEG reader on their own threads, like the kiosk's browser."""

    def __init__(self, port: int):
        self.port = port
        self.stop = threading.Event()
        self.mjpeg_parts = 0
        self.states = 0
        self.photo_times: list[float] = []
        self._seen_photo: str | None = None
        self.threads = [
            threading.Thread(target=self._sse, daemon=True),
            threading.Thread(target=self._mjpeg, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _sse(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/events")
        resp = conn.getresponse()
        while not self.stop.is_set():
            line = resp.fp.readline()
            if not line:
                return
            if not line.startswith(b"data: "):
                continue
            self.states += 1
            state = json.loads(line[6:])
            photo = state.get("photo")
            if state.get("state") == "review" and photo and photo["url"] != self._seen_photo:
                self._seen_photo = photo["url"]
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                c.request("GET", photo["url"])
                r = c.getresponse()
                data = r.read()
                if r.status == 200 and data[:2] == b"\xff\xd8":
                    self.photo_times.append(time.monotonic())
                c.close()

    def _mjpeg(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/preview.mjpg")
        resp = conn.getresponse()
        while not self.stop.is_set():
            line = resp.fp.readline()
            if not line:
                return
            if line.startswith(b"Content-Length:"):
                n = int(line.split(b":")[1])
                resp.fp.readline()
                resp.fp.read(n)
                self.mjpeg_parts += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of the frame-rate run")
    ap.add_argument("--captures", type=int, default=5, help="photos taken for the latency figure")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(None, tmp)
        # the frame-rate run: hold guidance (steady_s beyond the run) so no capture interrupts it
        cfg = replace(
            cfg,
            session=replace(
                cfg.session,
                steady_s=30.0,
                countdown_s=0.0,
                max_retakes=10,
                ui_port=0,
                guidance_timeout_s=3600.0,
                idle_timeout_s=3600.0,
            ),
        )
        svc = Service(cfg, sim=True, realtime=False).start()
        clients = Clients(svc.ui.port)
        s = svc.session
        s.post("start")
        doc = next(d for d in s.documents if d["id"] == "id_card")
        s.post("choose", profile="id_card", city=doc["cities"][0] if doc["cities"] else "")
        s.post("consent")
        s.post("accept")  # the requirements screen
        start_deadline = time.monotonic() + 30
        while s.state is not State.GUIDANCE:
            if time.monotonic() > start_deadline:
                raise SystemExit(f"session did not reach guidance (state {s.state.value})")
            svc.step()
        for _ in range(30):  # warm-up: models, first detections
            svc.step()
        n0, t0, parts0 = svc.live.n, time.monotonic(), clients.mjpeg_parts
        while time.monotonic() - t0 < args.seconds:
            svc.step()
        fps_time = time.monotonic() - t0
        frames = svc.live.n - n0
        parts = clients.mjpeg_parts - parts0

        # the latency run: capture as soon as every check holds
        s.cfg = replace(s.cfg, steady_s=0.0, countdown_s=0.0)
        holds: list[float] = []

        def on_transition(old: State, new: State) -> None:
            if new is State.COUNTDOWN:  # every check holds (steady_s = 0)
                holds.append(time.monotonic())

        s.listeners.append(on_transition)
        deadline = time.monotonic() + 60 * args.captures
        captured = 0
        while captured < args.captures and time.monotonic() < deadline:
            svc.step()
            if s.state is State.REVIEW:
                captured += 1
                wait_until = time.monotonic() + 5
                while len(clients.photo_times) < captured and time.monotonic() < wait_until:
                    time.sleep(0.005)
                s.post("retake")
        latencies = []
        for photo_t in clients.photo_times:  # pair each photo with the last hold before it
            before = [h for h in holds if h <= photo_t]
            if before:
                latencies.append(photo_t - before[-1])
        clients.stop.set()
        svc.stop()
        svc.close()

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    fps = frames / fps_time
    out = {
        "guidance_fps": round(fps, 1),
        "frames": frames,
        "seconds": round(fps_time, 2),
        "mjpeg_frames_streamed": parts,
        "sse_states_received": clients.states,
        "hold_to_photo_s": {
            "median": round(statistics.median(latencies), 3) if latencies else None,
            "max": round(max(latencies), 3) if latencies else None,
            "n": len(latencies),
            "note": "steady_s and countdown_s set to 0: processing time only",
        },
        "peak_rss_mb": round(rss_mb, 1),
        "goals": {"guidance_fps": 30, "hold_to_photo_s": 1.0, "peak_rss_mb": 250},
    }
    out["met"] = {
        "guidance_fps": fps >= 30,
        "hold_to_photo_s": bool(latencies) and max(latencies) < 1.0,
        "peak_rss_mb": rss_mb < 250,
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
