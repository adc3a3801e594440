#!/usr/bin/env python3
"""Before/after contact sheet of make-photo's cut-out on the real photo fixtures, with its numbers.

    python benchmarks/contact_sheet.py [--out /tmp/contact_sheet.jpg] [--set all|real|phone]
                                       [--profile id_card] [--json]

For each single-person photo of tests/fixtures/real/ (group photos are refused by make-photo) and
each half-length phone photo of tests/fixtures/phone/ (``--set`` picks one), the photo is made
twice in one process — with the earlier coarse cut-out ("before") and with kiosk.photo.matting's
refined one ("after") — and each output is judged as a reviewer's tool would: a person segmenter
run on the output, and the share of what it calls background that is not the profile's colour
(kiosk.photo.matting.off_color_share). One row per photo: source, before, after, with the share
and the verdict written under each. The sheet is not committed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
REAL = FIXTURES / "real"
PHONE = FIXTURES / "phone"
SKIP = {"group"}
CELL = 220  # height of a cell on the sheet, px


def fixtures(which: str = "all") -> list[Path]:
    """The photos of a set: real (face crops, by category folder), phone (half-length), or all."""
    real = sorted(p for p in REAL.glob("*/*.jpg") if p.parent.name not in SKIP)
    phone = sorted(PHONE.glob("*.jpg"))
    return {"real": real, "phone": phone}.get(which, real + phone)


def _set(path: Path) -> str:
    return "phone" if path.parent == PHONE else "real"


def _cell(rgb: np.ndarray, lines: list[str], bad: bool = False) -> np.ndarray:
    h, w = rgb.shape[:2]
    img = cv2.resize(rgb, (round(w * CELL / h), CELL), interpolation=cv2.INTER_AREA)[..., ::-1].copy()
    img = cv2.copyMakeBorder(img, 0, 16 * len(lines) + 4, 0, 0, cv2.BORDER_CONSTANT, value=(64, 64, 64))
    for i, text in enumerate(lines):
        color = (80, 80, 255) if bad and i == 0 else (255, 255, 255)
        cv2.putText(img, text, (3, CELL + 14 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, color, 1)
    return img


def _row(cells: list[np.ndarray], width: int) -> np.ndarray:
    h = max(c.shape[0] for c in cells)
    row = np.full((h, width, 3), 32, np.uint8)
    x = 0
    for c in cells:
        row[: c.shape[0], x : x + c.shape[1]] = c
        x += c.shape[1] + 6
    return row


def _stats(entries: list[dict], cutout: str, limit: float) -> dict:
    """The numbers of one cut-out over some photos: how many outputs have a clean background."""
    made = [e[cutout] for e in entries if "off_color" in e.get(cutout, {})]
    shares = [m["off_color"] for m in made if m["off_color"] is not None]
    ok = [m for m in made if m["off_color"] is not None and m["off_color"] <= limit]
    strict = [m for m in made if m["off_color_strict"] is not None and m["off_color_strict"] <= limit]
    compliant = [m for m in made if m["compliant"]]
    return {
        "made": len(made),
        "clean": len(ok),  # off-colour share within the limit
        "clean_share": round(len(ok) / max(len(made), 1), 3),
        "clean_strict": len(strict),
        "compliant": len(compliant),
        "compliant_and_dirty": sum(1 for m in compliant if m["off_color"] is None or m["off_color"] > limit),
        "off_color_median": round(statistics.median(shares), 5) if shares else None,
        "off_color_max": round(max(shares), 5) if shares else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/contact_sheet.jpg", help="where to write the sheet (JPEG)")
    ap.add_argument("--set", default="all", choices=("all", "real", "phone"), help="which fixtures")
    ap.add_argument("--profile", default="id_card")
    ap.add_argument("--json", action="store_true", help="print the per-photo numbers as JSON")
    args = ap.parse_args()

    from kiosk.errors import KioskError
    from kiosk.photo import PhotoTools, get_profile
    from kiosk.photo.matting import off_color_share, seen_background
    from kiosk.vision.imageio import load_image

    tools = PhotoTools()
    profile = get_profile(args.profile)
    tol = profile.thresholds["background_color_tolerance"]
    limit = profile.thresholds["background_off_color_max"]
    rows, photos = [], {}
    times: dict[str, list[float]] = {"coarse": [], "refined": []}
    for path in fixtures(args.set):
        name = f"{path.parent.name}/{path.name}"
        src = load_image(path)
        cells = [_cell(src, [name[-28:], f"{src.shape[1]}x{src.shape[0]}"])]
        entry: dict = {"set": _set(path)}
        for cutout in ("coarse", "refined"):
            tools.cutout = cutout
            t = time.perf_counter()
            try:
                photo = tools.make_photo(path, profile)
            except KioskError as exc:
                entry[cutout] = {"refused": str(exc)}
                continue
            times[cutout].append(time.perf_counter() - t)
            out = cv2.imdecode(np.frombuffer(photo.jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            seen = tools.segmenter.mask(out)  # the reviewer's view of the output
            share = off_color_share(out, seen_background(seen), profile.backgrounds[0], tol)
            strict = off_color_share(out, seen < 0.5, profile.backgrounds[0], tol)
            failed = [c.id for c in photo.report.failures()]
            entry[cutout] = {
                "off_color": share,
                "off_color_strict": strict,  # the contour's cell included
                "compliant": photo.compliant,
                "failed": failed,
            }
            label = "n/a" if share is None else f"{100 * share:.2f}% off-colour"
            verdict = "compliant" if photo.compliant else "refused: " + ",".join(failed)[:30]
            cells.append(_cell(out, [f"{cutout}: {label}", verdict], bad=share is None or share > limit))
        photos[name] = entry
        rows.append(cells)
    width = max(sum(c.shape[1] + 6 for c in r) for r in rows) if rows else 1
    sheet = np.vstack([_row(r, width) for r in rows]) if rows else np.zeros((1, 1, 3), np.uint8)
    cv2.imwrite(args.out, sheet, [cv2.IMWRITE_JPEG_QUALITY, 88])

    summary = {"profile": profile.id, "limit": limit, "sheet": args.out, "photos": len(photos)}
    for cutout in ("coarse", "refined"):
        summary[cutout] = _stats(list(photos.values()), cutout, limit)
        t = times[cutout]
        summary[cutout]["median_make_s"] = round(statistics.median(t), 4) if t else None
        summary[cutout]["by_set"] = {
            name: _stats([e for e in photos.values() if e["set"] == name], cutout, limit)
            for name in sorted({e["set"] for e in photos.values()})
        }
    if args.json:
        summary["per_photo"] = photos
    print(json.dumps(summary, indent=None if args.json else 1, default=lambda x: round(x, 5)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
