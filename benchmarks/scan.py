#!/usr/bin/env python3
"""Time and success of reading a slip from 640x480 camera frames (kiosk.capture.scan.decode_frame).

    python benchmarks/scan.py --json [--runs 30]

Frames are made from the rendered slip as tests/test_scan.py makes them: held straight, turned 20
degrees with perspective, half in shadow, dim, all of these, and unreadable (too far, out of focus:
the worst case, both passes run and find nothing). The session reads one frame per turn of its loop,
so the CPU time per frame is what the scan costs the terminal.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {
    "straight": {},
    "rot20_perspective": {"angle": 20.0, "tilt": 0.12},
    "shadow": {"shadow": 0.5},
    "dim": {"gain": 0.25},
    "all": {"angle": 12.0, "tilt": 0.1, "gain": 0.3, "shadow": 0.45},
    "very_dim": {"gain": 0.06},  # the second pass reads it
    "dark_shadow": {"shadow": 0.5, "gain": 0.1},  # likewise
    "unreadable": {"width_share": 0.15, "blur": 2.5},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from kiosk.capture.scan import decode_frame
    from tests.test_scan import a_number, photograph, slip_image

    number = a_number()
    slip = slip_image(number)
    out: dict[str, dict[str, float | bool]] = {}
    for name, how in CASES.items():
        frame = photograph(slip, **how)
        walls, cpus, read = [], [], None
        for _ in range(args.runs):
            w0, c0 = time.perf_counter(), time.process_time()
            d = decode_frame(frame)
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
            read = d
        out[name] = {
            "read": bool(read and read.text == number),
            "wall_ms_median": round(statistics.median(walls) * 1000, 2),
            "cpu_ms_median": round(statistics.median(cpus) * 1000, 2),
        }
    if args.json:
        print(json.dumps({"frame": [640, 480], "runs": args.runs, "cases": out}))
    else:
        for name, r in out.items():
            wall, cpu = r["wall_ms_median"], r["cpu_ms_median"]
            print(f"{name:20s} read={r['read']!s:5s} {wall:7.2f} ms wall {cpu:7.2f} ms cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
