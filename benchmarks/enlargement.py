#!/usr/bin/env python3
"""How a made photo's sharpness and detail fall with the enlargement of the source's face.

    python benchmarks/enlargement.py [--set real|phone|all] [--limit N] [--profile id_card] [--json]

Each single-person photo of tests/fixtures/real/ and tests/fixtures/phone/ is made into the
profile's photo at its native size and downscaled by 2x, 3x and 4x (area-averaged, re-encoded as
JPEG 92 as an upload would be). Per output: the enlargement (photo pixels per source pixel, the
value `source_resolution` judges), the `sharpness` check's value (the face at a fixed 64 px eye
distance), and the fine detail of the face at the photo's own size (RMS of the luminance minus
its Gaussian blur, sigma 1, inside the face oval) relative to the same photo's native output.
The relative figures use only photos whose native output was not enlarged (a true reference).
Summary per enlargement bin (medians and 10th percentiles) on stdout; --json adds every row.
Why: the limit `source_enlargement_max` in kiosk/photo/profiles.toml is picked from these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.contact_sheet import fixtures  # noqa: E402
from kiosk.errors import KioskError  # noqa: E402
from kiosk.photo.service import PhotoTools  # noqa: E402
from kiosk.vision.imageio import load_image  # noqa: E402

FACTORS = (1, 2, 3, 4)
BINS = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 100.0)


def fine_detail(tools: PhotoTools, jpeg: bytes) -> float | None:
    """RMS of the finest band of the luminance inside the face oval, at the photo's own size."""
    rgb = load_image(jpeg)
    faces = tools.analyzer.analyze(rgb).faces
    if not faces:
        return None
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    fine = y - cv2.GaussianBlur(y, (0, 0), 1.0)
    hull = cv2.convexHull(faces[0].landmarks[:, :2].astype(np.float32)).astype(np.int32)
    mask = np.zeros(y.shape, np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    return float(np.sqrt((fine[mask] ** 2).mean())) if mask.sum() > 100 else None


def measure(tools: PhotoTools, path: Path, profile: str) -> list[dict]:
    src = load_image(path)
    h, w = src.shape[:2]
    rows = []
    for f in FACTORS:
        img = src if f == 1 else cv2.resize(src, (round(w / f), round(h / f)), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        row = {"photo": f"{path.parent.name}/{path.stem}", "factor": f, "size": [img.shape[1], img.shape[0]]}
        try:
            photo = tools.make_photo(buf.tobytes(), profile)
        except KioskError as exc:  # no face, several, or an image too small to decode
            row["refused"] = exc.code or str(exc)
            rows.append(row)
            continue
        sharp = photo.report.get("sharpness")
        others = [c.id for c in photo.report.failures() if c.id != "source_resolution"]
        row.update(
            enlargement=round(photo.placement.enlargement, 3),
            sharpness=None if sharp.value is None else round(sharp.value, 4),
            fine=fine_detail(tools, photo.jpeg),
            compliant_without_source_resolution=not others,
        )
        rows.append(row)
    native = rows[0]
    for r in rows:
        if native.get("fine") and r.get("fine") and native.get("enlargement", 9) <= 1.0:
            r["fine_rel"] = round(r["fine"] / native["fine"], 3)
            r["sharpness_rel"] = (
                round(r["sharpness"] / native["sharpness"], 3) if native["sharpness"] else None
            )
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for lo, hi in zip(BINS, BINS[1:], strict=False):
        b = [r for r in rows if "enlargement" in r and lo < r["enlargement"] <= hi]
        if not b:
            continue
        s = {"enlargement": f"{lo}-{hi}", "n": len(b)}
        for key in ("sharpness", "sharpness_rel", "fine_rel"):
            v = sorted(r[key] for r in b if r.get(key) is not None)
            if v:
                s[key] = {
                    "median": round(statistics.median(v), 3),
                    "p10": round(v[len(v) // 10], 3),
                    "n": len(v),
                }
        s["sharpness_check_fails"] = sum(1 for r in b if r["sharpness"] is not None and r["sharpness"] < 0.17)
        s["otherwise_compliant"] = sum(1 for r in b if r["compliant_without_source_resolution"])
        out.append(s)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="all", choices=("all", "real", "phone"))
    ap.add_argument("--limit", type=int, default=0, help="every n-th photo of the set (0: all)")
    ap.add_argument("--profile", default="id_card")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = fixtures(args.set)
    if args.limit:
        paths = paths[:: max(1, len(paths) // args.limit)]
    tools = PhotoTools()
    rows = []
    for p in paths:
        rows += measure(tools, p, args.profile)
        print(json.dumps(rows[-len(FACTORS) :]), file=sys.stderr, flush=True)
    out = {"profile": args.profile, "photos": len(paths), "load": os.getloadavg(), "bins": summary(rows)}
    if args.json:
        out["rows"] = rows
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
