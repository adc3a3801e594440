"""Receipt benchmark: numbers issued per second with durability on (WAL, synchronous=FULL, fsync'd
photo), and the time from accepting a photo to the slip's last byte on the virtual printer.

Usage: python benchmarks/receipt.py [--json] [--n N]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time

from PIL import Image

from kiosk.hw.printer import open_printer
from kiosk.receipt.authority import IssueRequest, LocalAuthority
from kiosk.receipt.issue import issue_receipt
from kiosk.receipt.layouts import load_layouts
from kiosk.store import Store


def _photo() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (358, 441), (230, 230, 230)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    photo = _photo()
    city = load_layouts().city("guangzhou")
    with tempfile.TemporaryDirectory() as d, Store(d) as store:
        a = LocalAuthority("001")
        t0 = time.perf_counter()
        for _ in range(args.n):  # the number alone: session, fsync'd photo, one committed transaction
            sid = store.begin_session("id_card", city.id, a.station)
            path = store.write_photo_file(sid, photo)
            a.issue(store, IssueRequest(sid, "id_card", city, path, photo))
        numbers_per_s = args.n / (time.perf_counter() - t0)
    lat = {}
    for profile, cty in (("id_card", "guangzhou"), ("id_card", "shenzhen")):  # without / with thumbnail
        with tempfile.TemporaryDirectory() as d, Store(d) as store:
            printer = open_printer("virtual")
            a = LocalAuthority("001")
            issue_receipt(store, a, printer, profile, cty, photo)  # warm-up: imports, fonts, data files
            times = []
            for _ in range(max(5, args.n // 10)):
                t = time.perf_counter()
                r = issue_receipt(store, a, printer, profile, cty, photo)
                times.append((time.perf_counter() - t) * 1000)
                assert r.printed
            lat[f"{profile}_{cty}"] = {
                "median_ms": round(statistics.median(times), 2),
                "max_ms": round(max(times), 2),
            }
    out = {"numbers_per_s_durable": round(numbers_per_s, 1), "accept_to_last_byte_ms": lat, "n": args.n}
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
