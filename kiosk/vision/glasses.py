"""Whether a face wears glasses: the edges a spectacle frame draws in an eye-levelled crop.

Glare on lenses can only be asked about when there are lenses: the photo check and live guidance
speak of glasses only for a face this module finds them on. No model here knows glasses. A frame
is a thin, continuous line at a known place on every face: its bridge crosses the nose at about
the eye line, where bare skin is smooth from one inner eye corner to the other, and its lower
rims run under both eyes, below the lower lids. Each is read as the strongest row of vertical
gradient (|d/dy|, horizontal edges) against the face's own cheek texture, and the rims must also
be continuous (a Canny edge in most of their columns). All three must hold.

Limits (tests/test_glasses.py measures them on real photos): rimless glasses and frames whose
lower rim is missing are not seen; most sunglasses (large wrap-around or mirrored lenses, whose
lower edge lies outside the rim band) are not either; faces whose eyes are under min_ied_px apart
in the analysed image are not measured.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from kiosk.errors import KioskError

DATA = Path(__file__).parent / "data" / "glasses.toml"
SCHEMA_VERSION = 1


class GlassesDataError(KioskError):
    exit_code = 2


@dataclass(frozen=True)
class GlassesRules:
    min_ied_px: float
    crop_ied: float
    bridge_rows: tuple[float, float]
    bridge_half_width: float
    rim_rows: tuple[float, float]
    rim_centres: float
    rim_half_width: float
    skin_rows: tuple[float, float]
    skin_half_width: float
    skin_floor: float
    edge_rows: tuple[float, float]
    edge_half_width: float
    edge_percentile: float
    bridge_min: float
    rim_min: float
    rim_columns_min: float


def parse_rules(data: dict) -> GlassesRules:
    """The [glasses] table, checked: every key present, numbers where numbers belong, ranges ordered."""
    if data.get("schema_version") != SCHEMA_VERSION:
        raise GlassesDataError(f"glasses.toml: schema_version must be {SCHEMA_VERSION}")
    t = data.get("glasses")
    if not isinstance(t, dict):
        raise GlassesDataError("glasses.toml: [glasses] missing")
    names = {f.name for f in fields(GlassesRules)}
    for k in t:
        if k not in names:
            raise GlassesDataError(f"glasses.toml: glasses.{k}: unknown key")
    values = {}
    for name in sorted(names):
        if name not in t:
            raise GlassesDataError(f"glasses.toml: glasses.{name}: missing")
        v = t[name]
        if name.endswith("_rows"):
            ok = isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v) and v[0] < v[1]
            if not ok:
                raise GlassesDataError(f"glasses.toml: glasses.{name}: expected [low, high] with low < high")
            values[name] = (float(v[0]), float(v[1]))
        else:
            if not _is_num(v) or v < 0:
                raise GlassesDataError(f"glasses.toml: glasses.{name}: expected a non-negative number")
            values[name] = float(v)
    return GlassesRules(**values)


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@lru_cache(maxsize=1)
def rules() -> GlassesRules:
    return parse_rules(tomllib.loads(DATA.read_text("utf-8")))


@dataclass(frozen=True)
class Glasses:
    """The frame's evidence on one face and the verdict."""

    worn: bool
    bridge: float  # the bridge row's edge strength over the cheeks' texture
    rim: float  # the weaker lower rim's edge strength, same scale
    rim_columns: float  # the weaker rim's share of columns crossed by an edge

    def to_json(self) -> dict:
        return {
            "worn": self.worn,
            "bridge": round(self.bridge, 2),
            "rim": round(self.rim, 2),
            "rim_columns": round(self.rim_columns, 2),
        }


MARGIN = 0.1  # IED of crop around the regions read


def _frame(r: GlassesRules) -> tuple[int, int, float, float]:
    """Crop width, height and where the eye midpoint lies in it: every region read, with a margin."""
    spans = [r.bridge_rows, r.rim_rows, r.skin_rows, r.edge_rows]
    top = max(-min(a for a, _ in spans), 0.0) + MARGIN
    bottom = max(b for _, b in spans) + MARGIN
    half = (
        max(r.rim_centres + r.rim_half_width, r.skin_half_width, r.edge_half_width, r.bridge_half_width)
        + MARGIN
    )
    i = r.crop_ied
    return int(round(2 * half * i)), int(round((top + bottom) * i)), half * i, top * i


def _levelled(rgb: np.ndarray, eyes: np.ndarray, r: GlassesRules) -> tuple[np.ndarray, float, float]:
    """The eyes level, crop_ied apart; returns the crop and the eye midpoint's place in it."""
    w, h, x, y = _frame(r)
    d = eyes[1] - eyes[0]
    s = r.crop_ied / max(float(np.hypot(*d)), 1e-6)
    a = -np.arctan2(d[1], d[0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = np.hstack([rot, (np.array([x, y]) - rot @ ((eyes[0] + eyes[1]) / 2))[:, None]])
    if s < 0.5:  # shrink first (area), so the warp does not alias a large image
        ih, iw = rgb.shape[:2]
        small = cv2.resize(
            rgb, (max(1, round(iw * s * 2)), max(1, round(ih * s * 2))), interpolation=cv2.INTER_AREA
        )
        m = m @ np.array([[iw / small.shape[1], 0, 0], [0, ih / small.shape[0], 0], [0, 0, 1]])
        rgb = small
    crop = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, x, y


def detect_glasses(rgb: np.ndarray, eye_centers: np.ndarray) -> Glasses | None:
    """Whether the face whose eye centres are given wears glasses; None when too small to tell.

    ``eye_centers`` are (image-left eye, image-right eye) in ``rgb``'s pixels, as in
    ``kiosk.vision.types.Face``.
    """
    r = rules()
    eyes = np.asarray(eye_centers, np.float64)
    if not np.all(np.isfinite(eyes)) or float(np.hypot(*(eyes[1] - eyes[0]))) < r.min_ied_px:
        return None
    crop, x0, y0 = _levelled(rgb, eyes, r)
    i = r.crop_ied

    def rows(span: tuple[float, float]) -> slice:
        return slice(int(round(y0 + span[0] * i)), int(round(y0 + span[1] * i)))

    def cols(centre: float, half: float) -> slice:
        return slice(int(round(x0 + (centre - half) * i)), int(round(x0 + (centre + half) * i)))

    gray = cv2.GaussianBlur(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (3, 3), 0)
    g = gray.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
    mag = np.hypot(gx, gy)
    skin = mag[rows(r.skin_rows), cols(0.0, r.skin_half_width)]
    ref = max(float(np.median(skin)) if skin.size else 0.0, r.skin_floor)
    region = mag[rows(r.edge_rows), cols(0.0, r.edge_half_width)]
    hi = float(np.percentile(region, r.edge_percentile)) if region.size else 0.0
    edges = cv2.Canny(gray, 0.5 * hi, hi) > 0 if hi > 0 else np.zeros_like(gray, bool)

    bridge = gy[rows(r.bridge_rows), cols(0.0, r.bridge_half_width)]
    bridge_v = float(bridge.mean(axis=1).max()) / ref if bridge.size else 0.0
    rims, crossed = [], []
    for side in (-r.rim_centres, r.rim_centres):
        band = gy[rows(r.rim_rows), cols(side, r.rim_half_width)]
        rims.append(float(band.mean(axis=1).max()) / ref if band.size else 0.0)
        e = edges[rows(r.rim_rows), cols(side, r.rim_half_width)]
        crossed.append(float(e.any(axis=0).mean()) if e.size else 0.0)
    rim_v, cols_v = min(rims), min(crossed)
    worn = bridge_v >= r.bridge_min and rim_v >= r.rim_min and cols_v >= r.rim_columns_min
    return Glasses(bool(worn), bridge_v, rim_v, cols_v)
