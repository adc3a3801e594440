"""Image-quality measures of a face photo, in the spirit of ISO/IEC 29794-5 (OFIQ). Pure functions.

Face measures run on an eye-levelled crop normalised to a fixed inter-eye distance, so a value
means the same on a 12 MP still, a webcam frame and a 358x441 document photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# face-mesh index sets: one definition in kiosk.vision.mesh (CHEEKS, FACE_OVAL, NOSE_BRIDGE re-exported)
from kiosk.vision.mesh import (
    BROWS,
    BROWS_LOWER,
    CHEEKS,
    EYE_CORNERS,
    EYE_RINGS,
    FACE_OVAL,
    LIPS_OUTER,
    NOSE_BRIDGE,
)

ALIGNED_IED = 64.0  # inter-eye distance of the normalised face crop, pixels
ALIGNED_SIZE = (256, 256)
ALIGNED_EYES_Y = 100.0  # eye line of the crop


UNDER_LEVEL = 25  # OFIQ: luminance at or below is under-exposed
OVER_LEVEL = 247  # OFIQ: luminance at or above is over-exposed

# Glare on spectacle lenses (see glasses_glare). Tuned on the face fixtures and synthetic glare.
GLARE_LEVEL = 235  # a glare pixel's dimmest channel is at least this: the reflection is near white
GLARE_ABOVE_LENS = 80  # ... and this much above the lens area's median dimmest channel (skin seen through it)
GLARE_MAX_CHROMA = 25  # max minus min channel: a mirrored white light is neutral, lit skin is not
GLARE_MIN_SPOT = 0.004  # inter-eye distances squared: smaller spots (frame glints, noise) do not count
IRIS_RADIUS = 0.10  # inter-eye distances: the cornea's catchlights lie inside this disc


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma as float32, 0-255."""
    f = rgb.astype(np.float32)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def resample(
    src: np.ndarray,
    m: np.ndarray,
    size: tuple[int, int],
    flags: int = cv2.INTER_LINEAR,
    border_value: float | tuple = 0,
    border_mode: int = cv2.BORDER_CONSTANT,
) -> np.ndarray:
    """warpAffine that stays anti-aliased when the map shrinks a lot (a 12 MP still to a photo).

    The region the output needs is first area-averaged to the target scale, so the warp itself is
    close to 1:1 and only rotates and shifts.
    """
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:
        inv = cv2.invertAffineTransform(m)
        w, h = size
        corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) @ inv[:, :2].T + inv[:, 2]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 4
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 4
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, src.shape[1]), min(y1, src.shape[0])
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            f = scale
            region = src[y0:y1, x0:x1]
            rw, rh = max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))
            small = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
            # output <- small: compose m with (small -> region -> src)
            back = np.array([[(x1 - x0) / rw, 0, x0], [0, (y1 - y0) / rh, y0], [0, 0, 1]])
            m = np.vstack([m, [0, 0, 1]]) @ back
            m, src = m[:2], small
    return cv2.warpAffine(src, m, size, flags=flags, borderMode=border_mode, borderValue=border_value)


def level_matrix(
    eye_left: np.ndarray, eye_right: np.ndarray, ied: float, eyes_at: tuple[float, float]
) -> np.ndarray:
    """Similarity map that puts the eye midpoint at eyes_at, eyes level and ied pixels apart."""
    d = eye_right - eye_left
    angle = np.arctan2(d[1], d[0])
    s = ied / max(float(np.hypot(*d)), 1e-6)
    c, si = np.cos(-angle) * s, np.sin(-angle) * s
    rot = np.array([[c, -si], [si, c]])
    mid = (eye_left + eye_right) / 2
    t = np.asarray(eyes_at) - rot @ mid
    return np.hstack([rot, t[:, None]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts[..., :2] @ m[:, :2].T + m[:, 2]


@dataclass
class AlignedFace:
    """The face crop normalised for measuring, and its landmarks in crop pixels."""

    rgb: np.ndarray
    landmarks: np.ndarray  # (468, 2)
    mask: np.ndarray  # bool: skin region below the brows, eyes and lips excluded, inside the image


def align_face(rgb: np.ndarray, landmarks: np.ndarray, eye_centers: np.ndarray) -> AlignedFace:
    w, h = ALIGNED_SIZE
    m = level_matrix(eye_centers[0], eye_centers[1], ALIGNED_IED, (w / 2, ALIGNED_EYES_Y))
    crop = resample(rgb, m, ALIGNED_SIZE)
    valid = resample(np.full(rgb.shape[:2], 255, np.uint8), m, ALIGNED_SIZE, cv2.INTER_NEAREST) > 0
    lm = apply(m, landmarks)
    return AlignedFace(crop, lm, face_region(lm, ALIGNED_SIZE) & valid)


def face_region(lm: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Skin of the face: inside the oval, below the eyebrows (fringe), without eyes and lips."""
    w, h = size
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(lm[list(FACE_OVAL)]).astype(np.int32)], 1)
    for ring in (*EYE_RINGS, LIPS_OUTER):
        cv2.fillPoly(mask, [np.round(lm[list(ring)]).astype(np.int32)], 0)
    brow = int(np.ceil(lm[list(BROWS), 1].max()))
    mask[: max(brow, 0)] = 0
    return mask.astype(bool)


def illumination_uniformity(face: AlignedFace, bins: int = 32) -> float:
    """Intersection of the left and right face-half luminance histograms (1 = identical, OFIQ).

    The halves split at the nose bridge, so a turned head still compares like with like.
    """
    y = luminance(face.rgb)
    split = face.landmarks[NOSE_BRIDGE, 0]
    cols = np.arange(y.shape[1])[None, :]
    halves = [face.mask & (cols < split), face.mask & (cols >= split)]
    hists = []
    for m in halves:
        if m.sum() < 50:
            return 0.0
        hist, _ = np.histogram(y[m], bins=bins, range=(0, 256))
        hists.append(hist / hist.sum())
    return float(np.minimum(*hists).sum())


@dataclass
class Exposure:
    mean: float  # mean face luminance 0-255
    under: float  # fraction of face pixels <= UNDER_LEVEL
    over: float  # fraction >= OVER_LEVEL
    dynamic_range: float  # entropy of the 256-bin luminance histogram, bits


def exposure(face: AlignedFace) -> Exposure:
    """Face luminance statistics of OFIQ's exposure measures (under, over, dynamic range)."""
    y = luminance(face.rgb)[face.mask]
    if y.size == 0:
        return Exposure(0.0, 1.0, 0.0, 0.0)
    hist = np.bincount(np.clip(y, 0, 255).astype(np.int32), minlength=256) / y.size
    p = hist[hist > 0]
    return Exposure(
        float(y.mean()),
        float((y <= UNDER_LEVEL).mean()),
        float((y >= OVER_LEVEL).mean()),
        float(-(p * np.log2(p)).sum()),
    )


def sharpness(face: AlignedFace) -> float:
    """Fine detail over mid-frequency detail of the face (0-1): contrast and exposure cancel out.

    Blur removes the finest band first, so the ratio falls with defocus and motion; a flat but
    sharp face keeps it because both bands shrink together.
    """
    y = luminance(face.rgb)
    fine = y - cv2.GaussianBlur(y, (0, 0), 1.0)
    mid = cv2.GaussianBlur(y, (0, 0), 1.0) - cv2.GaussianBlur(y, (0, 0), 4.0)
    m = cv2.erode(face.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if m.sum() < 100:
        return 0.0
    return float(np.sqrt((fine[m] ** 2).mean() / max((mid[m] ** 2).mean(), 1e-6)))


def sharpness_at_scale(rgb: np.ndarray, landmarks: np.ndarray, eye_centers: np.ndarray) -> float:
    """``sharpness`` on one scale: the face area-resampled to ALIGNED_IED, then only levelled.

    The bilinear warp of ``align_face`` attenuates the finest band by an amount that depends on
    the resampling ratio, so the same scene read 0.195 in a driving-licence photo and 0.24 in an
    ID-card one. Area resampling to a fixed eye distance first makes the value a property of the
    scene (the face's own detail per eye distance), whatever size the image has.
    """
    ied = float(np.hypot(*(eye_centers[1] - eye_centers[0])))
    if ied < 1:
        return 0.0
    s = ALIGNED_IED / ied
    # only the region the levelled crop needs is resampled (a live frame or a 12 MP still alike)
    full = level_matrix(eye_centers[0], eye_centers[1], ALIGNED_IED, (ALIGNED_SIZE[0] / 2, ALIGNED_EYES_Y))
    inv = cv2.invertAffineTransform(full)
    w_out, h_out = ALIGNED_SIZE
    corners = (
        np.array([[0, 0], [w_out, 0], [0, h_out], [w_out, h_out]], np.float64) @ inv[:, :2].T + inv[:, 2]
    )
    h, w = rgb.shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 4, 0)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 4, [w, h])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    region = rgb[y0:y1, x0:x1]
    size = (max(1, round((x1 - x0) * s)), max(1, round((y1 - y0) * s)))
    small = cv2.resize(region, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    k = np.array([size[0] / (x1 - x0), size[1] / (y1 - y0)])
    eyes, lm = (eye_centers[:, :2] - (x0, y0)) * k, (landmarks[:, :2] - (x0, y0)) * k
    m = level_matrix(eyes[0], eyes[1], ALIGNED_IED, (ALIGNED_SIZE[0] / 2, ALIGNED_EYES_Y))
    crop = cv2.warpAffine(small, m, ALIGNED_SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    valid = (
        cv2.warpAffine(np.full(small.shape[:2], 255, np.uint8), m, ALIGNED_SIZE, flags=cv2.INTER_NEAREST) > 0
    )
    alm = apply(m, lm)
    return sharpness(AlignedFace(crop, alm, face_region(alm, ALIGNED_SIZE) & valid))


def background_region(person: np.ndarray, margin: int) -> np.ndarray:
    """Pixels surely background: person probability < 0.1, at least `margin` px away from the person."""
    fg = (person >= 0.1).astype(np.uint8)
    if margin > 0:
        fg = cv2.dilate(fg, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    return fg == 0


@dataclass
class Background:
    pixels: int
    mean_rgb: tuple[float, float, float]
    luminance_std: float


def background(rgb: np.ndarray, region: np.ndarray) -> Background | None:
    """Colour and uniformity of the background region; None when too little of it is visible."""
    if region.sum() < 0.02 * region.size:
        return None
    px = rgb[region].astype(np.float32)
    mean = px.mean(axis=0)
    y = 0.299 * px[:, 0] + 0.587 * px[:, 1] + 0.114 * px[:, 2]
    return Background(int(region.sum()), (float(mean[0]), float(mean[1]), float(mean[2])), float(y.std()))


def white_clothing(rgb: np.ndarray, person: np.ndarray, below_y: float) -> float | None:
    """Fraction of the clothing (person pixels below `below_y`) that is near-white; None if none shows."""
    rows = np.arange(rgb.shape[0])[:, None] >= below_y
    cloth = (person > 0.5) & rows
    if cloth.sum() < 0.01 * cloth.size:
        return None
    px = rgb[cloth].astype(np.int16)
    white = (px.min(axis=1) >= 200) & (px.max(axis=1) - px.min(axis=1) <= 30)
    return float(white.mean())


@dataclass
class FaceGeometry:
    """Sizes and positions that the document rules talk about, in image pixels."""

    face_width: float  # cheek to cheek (234-454)
    inter_eye: float
    head_length: float  # chin to crown (skull top, hair not included)
    center_x: float  # midpoint of the cheek points
    eye_y: float  # mean height of the eye centres
    crown_y: float
    chin_y: float


def face_geometry(face) -> FaceGeometry:  # face: kiosk.vision.Face
    lm = face.landmarks
    a, b = lm[CHEEKS[0], :2], lm[CHEEKS[1], :2]
    crown, chin = np.asarray(face.crown), np.asarray(face.chin)
    return FaceGeometry(
        face_width=float(np.hypot(*(b - a))),
        inter_eye=float(face.inter_eye_distance),
        head_length=float(np.hypot(*(chin - crown))),
        center_x=float((a[0] + b[0]) / 2),
        eye_y=float(face.eye_centers[:, 1].mean()),
        crown_y=float(crown[1]),
        chin_y=float(chin[1]),
    )


def hair_top(person: np.ndarray, geo: FaceGeometry) -> float | None:
    """Top of the hair: the highest person-mask row over the middle of the face (eye-levelled image).

    Searched no higher than 0.4 head lengths above the crown and only along person runs that
    reach the eyes, so that an object behind the head is not taken for hair. None when the mask
    shows no head there.
    """
    h, w = person.shape
    half = 0.25 * geo.face_width
    x0, x1 = int(max(0, geo.center_x - half)), int(min(w, geo.center_x + half + 1))
    limit = int(max(0, geo.crown_y - 0.4 * geo.head_length))
    y_eye = int(min(h, max(0, geo.eye_y)))
    if x1 <= x0 or y_eye <= limit:
        return None
    band = (person[limit:y_eye] > 0.5).astype(np.uint8)
    k = max(3, int(0.08 * geo.face_width) | 1)
    band = cv2.morphologyEx(band, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    band = band[:, x0:x1].astype(bool)  # closed first: holes in hair or a cap's badge do not count
    tops = []
    for col in band.T:  # per column, the top of the person run that reaches down to the eye line
        if col[-1]:
            gaps = np.flatnonzero(~col)
            tops.append(gaps[-1] + 1 if gaps.size else 0)
    if len(tops) < 0.5 * (x1 - x0):
        return None
    return float(limit + np.percentile(tops, 10))


def lens_regions(face: AlignedFace) -> tuple[np.ndarray, np.ndarray]:
    """Where a spectacle lens lies over each eye: an ellipse from the lower eyebrow to the upper cheek
    and from beyond the outer eye corner to short of the nose bridge (image-left eye first).

    Sized in inter-eye distances of the aligned crop, so it covers typical frames; it does not
    reach the forehead or the nose tip, and it stops at the face oval: on a turned head the
    outer lens lies over the background, whose white (a studio wall) is no reflection.
    """
    h, w = face.rgb.shape[:2]
    lm = face.landmarks
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(lm[list(FACE_OVAL)]).astype(np.int32)], 1)
    out = []
    for (outer, inner), brow in zip(EYE_CORNERS, BROWS_LOWER, strict=True):
        xo, xi = lm[outer, 0], lm[inner, 0]
        inward = 1.0 if xi >= xo else -1.0
        x_out, x_in = xo - inward * 0.30 * ALIGNED_IED, xi + inward * 0.22 * ALIGNED_IED
        top = lm[list(brow), 1].mean()
        bottom = (lm[outer, 1] + lm[inner, 1]) / 2 + 0.45 * ALIGNED_IED
        mask = np.zeros((h, w), np.uint8)
        centre = (round((x_out + x_in) / 2), round((top + bottom) / 2))
        axes = (max(1, round(abs(x_in - x_out) / 2)), max(1, round((bottom - top) / 2)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
        out.append((mask & oval).astype(bool))
    return out[0], out[1]


@dataclass
class Glare:
    fraction: float  # the worse lens: share of its area covered by glare spots
    per_lens: tuple[float, float]  # image-left lens, image-right lens
    spots: int  # glare spots counted over both lenses


def glasses_glare(face: AlignedFace) -> Glare:
    """Specular reflections on spectacle lenses: near-white, neutral spots much brighter than the
    skin seen through the lens, counted outside the irises.

    The dimmest channel carries the test because a mirrored white light raises all three channels
    while lit skin keeps its blue channel low. Catchlights on the cornea are excluded by the iris
    disc (the eye centres of the crop are the iris centres) and by the minimum spot size. With no
    glasses the measure sees the same skin and stays at 0 unless the skin itself is blown out.
    """
    px = face.rgb.astype(np.int16)
    dim = px.min(axis=2)
    chroma = px.max(axis=2) - dim
    h, w = dim.shape
    ys, xs = np.mgrid[0:h, 0:w]
    eyes_x = (w / 2 - ALIGNED_IED / 2, w / 2 + ALIGNED_IED / 2)
    min_spot = GLARE_MIN_SPOT * ALIGNED_IED**2
    fractions, spots = [], 0
    for lens, ex in zip(lens_regions(face), eyes_x, strict=True):
        if lens.sum() == 0:
            fractions.append(0.0)
            continue
        level = max(GLARE_LEVEL, float(np.median(dim[lens])) + GLARE_ABOVE_LENS)
        iris = (xs - ex) ** 2 + (ys - ALIGNED_EYES_Y) ** 2 <= (IRIS_RADIUS * ALIGNED_IED) ** 2
        bright = lens & ~iris & (dim >= level) & (chroma <= GLARE_MAX_CHROMA)
        n, _, stats, _ = cv2.connectedComponentsWithStats(bright.astype(np.uint8), connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        big = areas[areas >= min_spot]
        spots += int(big.size)
        fractions.append(float(big.sum() / lens.sum()))
    return Glare(max(fractions), (fractions[0], fractions[1]), spots)
