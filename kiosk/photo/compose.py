"""From a captured frame to the document's photo: level the eyes, scale and place the head by the
profile's geometry rules, and replace the background with a soft, halo-free edge.

Rules that cannot all hold are satisfied in the profile's priority order (e.g. the eye line wins
for the ID card); each rule narrows the allowed scale or offset, a conflicting one is recorded.
Nothing of the person is invented: beyond the source the edge is only extended for the segmenter,
the fill is painted only where the cut-out is background, and a person reaching the source's edge
is recorded for head_in_frame (kiosk.photo.framing). The cut-out is kiosk.photo.matting's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from kiosk.photo import measures as M
from kiosk.photo.framing import EdgeContact, edge_contact
from kiosk.photo.matting import agree, blend, guided_filter, refine
from kiosk.photo.profiles import Color, Profile
from kiosk.vision.segmentation import PersonSegmenter
from kiosk.vision.types import Face

SCALE_RULES = ("face_width", "inter_eye", "head_length")
AGREE_PASSES = 2  # segmenter runs on the composite that the cut-out is made to agree with
WINDOW = 0.06  # rows above and below the photo cut out with it, of its height


@dataclass
class Placement:
    """How the source was mapped into the photo, and which rules had to give way."""

    matrix: np.ndarray  # 2x3, source pixels -> photo pixels
    scale: float  # photo pixels per source pixel
    level_degrees: float  # rotation that levelled the eyes
    hair_top: float | None  # top of the hair in the photo, None when only the landmark crown was known
    conflicts: list[str] = field(default_factory=list)
    outside: float = 0.0  # fraction of the photo that lay outside the source image (filled with background)
    intended: dict[str, float] = field(default_factory=dict)  # rule -> value the photo should measure
    contact: EdgeContact | None = None  # the person at the source's edge (head_in_frame)
    margin: float = 0.0  # photo pixels the head must keep from the source's edge
    enlargement: float | None = None  # photo pixels per pixel of the source file (set by the service)

    def to_json(self) -> dict:
        return {
            "scale": round(self.scale, 4),
            "enlargement": None if self.enlargement is None else round(self.enlargement, 4),
            "level_degrees": round(self.level_degrees, 2),
            "hair_top": None if self.hair_top is None else round(self.hair_top, 1),
            "conflicts": list(self.conflicts),
            "outside": round(self.outside, 4),
            "intended": {k: round(v, 2) for k, v in self.intended.items()},
            "edge_contact": None
            if self.contact is None
            else {
                "head_px": round(self.contact.head, 1),
                "body_px": round(self.contact.body, 1),
                "crown_margin_px": None
                if math.isinf(self.contact.crown_margin)
                else round(self.contact.crown_margin, 1),
            },
        }


@dataclass
class Calibration:
    """What the re-measured photo taught: measure gains and position offsets (measured / intended).

    Landmarks found on a small source and on the finished photo differ by a few per cent (the
    crown most); one correction from the written file closes that loop.
    """

    gain: dict[str, float] = field(default_factory=dict)  # face_width / inter_eye / head_length
    offset: dict[str, float] = field(default_factory=dict)  # head_top / eye_line, photo pixels

    def learn(self, intended: dict[str, float], measured: dict[str, float]) -> Calibration:
        gain, offset = dict(self.gain), dict(self.offset)
        for rule, m in measured.items():
            if rule not in intended or m is None:
                continue
            if rule in SCALE_RULES:
                gain[rule] = gain.get(rule, 1.0) * m / max(intended[rule], 1e-6)
            else:
                offset[rule] = offset.get(rule, 0.0) + m - intended[rule]
        return Calibration(gain, offset)


def fold(intervals: list[tuple[str, float | None, float | None]]) -> tuple[float, float, list[str]]:
    """Intersect intervals in priority order; a rule that would empty the result is recorded and
    the current interval is moved to its bound nearest that rule."""
    lo, hi = -math.inf, math.inf
    conflicts = []
    for name, a, b in intervals:
        a = -math.inf if a is None else a
        b = math.inf if b is None else b
        if max(lo, a) <= min(hi, b):
            lo, hi = max(lo, a), min(hi, b)
        else:
            conflicts.append(name)
            lo = hi = lo if b < lo else hi
    return lo, hi, conflicts


def _pick(lo: float, hi: float) -> float:
    """The middle of the allowed interval: most room for re-measurement error on both sides."""
    if math.isinf(lo) and math.isinf(hi):
        raise ValueError("unbounded placement")
    if math.isinf(lo):
        return hi
    if math.isinf(hi):
        return lo
    return (lo + hi) / 2


def choose_scale(
    profile: Profile, geo: M.FaceGeometry, gain: dict[str, float] | None = None
) -> tuple[float, list[str]]:
    """Photo pixels per source pixel from the size rules, in priority order."""
    gain = gain or {}
    measured = {"face_width": geo.face_width, "inter_eye": geo.inter_eye, "head_length": geo.head_length}
    measured = {k: v * gain.get(k, 1.0) for k, v in measured.items()}
    intervals = []
    for name in profile.priority:
        if name in SCALE_RULES:
            r, v = profile.rules[name], max(measured[name], 1e-6)
            intervals.append(
                (name, None if r.min is None else r.min / v, None if r.max is None else r.max / v)
            )
    lo, hi, conflicts = fold(intervals)
    return _pick(lo, hi), conflicts


def choose_top(
    profile: Profile, hair_y: float, eye_y: float, rows: tuple[float, float]
) -> tuple[int, list[str]]:
    """First canvas row of the photo, from the vertical rules in priority order, within `rows`."""
    h = profile.size[1]
    intervals = []
    for name in profile.priority:
        r = profile.rules[name]
        if name == "head_top":  # hair_y - top in [min, max]
            intervals.append(
                (name, None if r.max is None else hair_y - r.max, None if r.min is None else hair_y - r.min)
            )
        elif name == "eye_line":  # h - (eye_y - top) in [min, max]
            intervals.append(
                (
                    name,
                    None if r.min is None else eye_y - h + r.min,
                    None if r.max is None else eye_y - h + r.max,
                )
            )
    lo, hi, conflicts = fold(intervals)
    lo2, hi2, outside = fold([("", lo, hi), ("canvas", *rows)])
    return round(_pick(lo2, hi2)), conflicts + (["canvas"] if outside else [])


def replace_background(rgb: np.ndarray, alpha: np.ndarray, fill: tuple[int, int, int]) -> np.ndarray:
    """Composite onto `fill` with the old background's colour removed from the edge pixels.

    Under the compositing model I = aF + (1-a)B, the new pixel aF + (1-a)N equals I + (1-a)(N - B):
    subtracting a local estimate of the old background B is what removes the halo.
    """
    img = rgb.astype(np.float32)
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    sure_bg = (alpha < 0.05).astype(np.float32)
    sigma = max(2.0, 0.02 * max(rgb.shape[:2]))
    wsum = cv2.GaussianBlur(sure_bg, (0, 0), sigma)[..., None]
    bsum = cv2.GaussianBlur(img * sure_bg[..., None], (0, 0), sigma)
    known = wsum > 1e-3
    b = np.where(known, bsum / np.maximum(wsum, 1e-3), img)  # no background nearby: plain blend
    new = np.asarray(fill, np.float32)
    out = img + (1.0 - a) * (new - b)
    out = np.where(a < 0.02, new, out)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def matte(rgb: np.ndarray, person: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The earlier cut-out ("coarse"): the segmentation probability guided by the grey image, a
    tighter ramp, zero off-source. Kept to measure the refined one against."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, round(0.012 * max(rgb.shape[:2])))
    a = guided_filter(grey, person.astype(np.float32), radius, 1e-3)
    a = np.clip((a - 0.2) / 0.6, 0.0, 1.0)  # probabilities 0.2..0.8 become the soft edge
    a = a * a * (3 - 2 * a)  # smoothstep: no visible kink at either end
    return a * valid


@dataclass
class Composition:
    image: np.ndarray  # the photo, RGB uint8 at the profile's size
    placement: Placement
    alpha: np.ndarray  # person matte at the photo's size


def compose(
    rgb: np.ndarray,
    face: Face,
    profile: Profile,
    segmenter: PersonSegmenter,
    background: Color | None = None,
    calib: Calibration | None = None,
    cutout: str = "refined",
) -> Composition:
    """The document photo of `face` in `rgb` (landmarks in rgb's pixels).

    `cutout` "refined" is kiosk.photo.matting's; "coarse" the earlier guided ramp of the mask
    alone, kept for the before/after measurements (benchmarks/contact_sheet.py).
    """
    w, h = profile.size
    color = background or profile.backgrounds[0]
    calib = calib or Calibration()
    geo = M.face_geometry(face)
    scale, conflicts = choose_scale(profile, geo, calib.gain)
    el, er = face.eye_centers[0], face.eye_centers[1]
    pad = h // 3
    m = M.level_matrix(el, er, scale * geo.inter_eye, (0.0, 0.0))
    cheeks = M.apply(m, face.landmarks[list(M.CHEEKS)])
    crown_y = float(M.apply(m, np.asarray(face.crown)[None])[0, 1])
    # provisional canvas: the photo plus `pad` rows above and below; crown 8 % below the photo top
    m[0, 2] += w / 2 - cheeks[:, 0].mean()
    m[1, 2] += pad + 0.08 * h - crown_y
    canvas_size = (w, h + 2 * pad)
    # beyond the source the edge is extended, never painted: a person cut by the edge continues
    # into it, so the segmenter sees the cut (head_in_frame) instead of a wall of black or white
    canvas = M.resample(rgb, m, canvas_size, border_mode=cv2.BORDER_REPLICATE)
    valid = M.resample(np.full(rgb.shape[:2], 255, np.uint8), m, canvas_size, cv2.INTER_NEAREST) > 0
    person = segmenter.mask(canvas)
    crown_c, chin_c = M.apply(m, np.array([face.crown, face.chin], dtype=np.float64))
    cgeo = M.FaceGeometry(
        face_width=geo.face_width * scale,
        inter_eye=geo.inter_eye * scale,
        head_length=geo.head_length * scale,
        center_x=w / 2,
        eye_y=float(M.apply(m, face.eye_centers)[:, 1].mean()),
        crown_y=float(crown_c[1]),
        chin_y=float(chin_c[1]),
    )
    hair = M.hair_top(person * valid, cgeo)
    hair_y = (hair if hair is not None else cgeo.crown_y) + calib.offset.get("head_top", 0.0)
    eye_y = cgeo.eye_y - calib.offset.get("eye_line", 0.0)
    top, vconf = choose_top(profile, hair_y, eye_y, (0, 2 * pad))
    if cutout == "refined":
        # the cut-out of a window a little taller than the photo; the hair top is then re-read
        # from it (the segmenter's view of the finished photo) and the rows re-chosen inside it,
        # so the re-measured photo lands without a second attempt
        e = round(WINDOW * h)
        w0, w1 = max(0, top - e), min(canvas.shape[0], top + h + e)
        win, win_ok = canvas[w0:w1], valid[w0:w1].astype(np.float32)
        prob_w = segmenter.mask(win)
        alpha_w = refine(win, prob_w, win_ok)
        seen_w = alpha_w
        for _ in range(AGREE_PASSES):  # the composite as a reviewer's segmenter sees it
            seen_w = segmenter.mask(blend(win, alpha_w, color.fill))
            alpha_w = agree(alpha_w, seen_w, prob_w)
        shifted = replace(cgeo, eye_y=cgeo.eye_y - w0, crown_y=cgeo.crown_y - w0, chin_y=cgeo.chin_y - w0)
        hair_w = M.hair_top(seen_w, shifted)  # where the re-measure will find it
        if hair_w is not None:
            hair = hair_w + w0
            hair_y = hair + calib.offset.get("head_top", 0.0)
            top, vconf = choose_top(profile, hair_y, eye_y, (w0, w1 - h))
            top = min(max(top, w0), w1 - h)  # a conflict may leave it at a rule's bound
        rows_w = slice(top - w0, top - w0 + h)
        alpha = alpha_w[rows_w]
    conflicts += vconf
    margin = profile.thresholds["head_in_frame_margin"] * h
    contact = edge_contact(person, valid, cgeo.chin_y, (top, top + h), round(margin), tuple(crown_c))
    rows = slice(top, top + h)
    photo_rgb, ok = canvas[rows], valid[rows].astype(np.float32)
    if cutout == "refined":  # and once more as the finished photo is seen (its own, finest view)
        alpha = agree(alpha, segmenter.mask(blend(photo_rgb, alpha, color.fill)), prob_w[rows_w])
    else:
        alpha = matte(photo_rgb, segmenter.mask(photo_rgb), ok)  # the photo's own view: finest mask
    image = replace_background(photo_rgb, alpha, color.fill)
    m[1, 2] -= top
    sizes = {"face_width": cgeo.face_width, "inter_eye": cgeo.inter_eye, "head_length": cgeo.head_length}
    intended = {k: sizes[k] * calib.gain.get(k, 1.0) for k in profile.rules if k in sizes}
    if "head_top" in profile.rules:
        intended["head_top"] = hair_y - top
    if "eye_line" in profile.rules:
        intended["eye_line"] = h - (eye_y - top)
    placement = Placement(
        matrix=m,
        scale=scale,
        level_degrees=math.degrees(math.atan2(er[1] - el[1], er[0] - el[0])),
        hair_top=None if hair is None else hair - top,
        conflicts=conflicts,
        outside=float(1.0 - ok.mean()),
        intended=intended,
        contact=contact,
        margin=margin,
    )
    return Composition(image, placement, alpha)
