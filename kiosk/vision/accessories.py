"""What a face wears: a head covering over the forehead. Pure functions of an image and its mesh.

No model here knows hats; the measure reads what the mesh says must be forehead skin. The face
mesh is fitted to the face whatever covers it, so its forehead (between the brows and the top of
the mesh) is where a cap's brim, a beanie's band or a hood lies when one is worn, and where bare
skin shows when none is. The skin it is compared with is the face's own, sampled where no hat
reaches (the nose bridge, the glabella, the upper cheeks; a mask's or a spectacle frame's colour
is left out by its chroma). Hair combed over the forehead (a fringe) covers it too: it is told
from a hat by its colour — natural hair is warm (brown, blond, red) or black, while the hats,
caps and helmets of the fixtures are neutral, cool or coloured.

A fringe comes from the crown: when what lies just above the mesh top is neither hair-coloured
nor of the fringe's colour (a white bucket hat over a black fringe), the fringe is under a hat.
In a grey photo hair and hat cannot be told apart by colour, and a forehead outside the image
cannot be read: both are "not measured" rather than guessed.

Limits of the colour rule alone (tests/test_real_photos.py measures them on real photos): a hat
worn high on the head (the forehead bare: a beanie, a top hat, a straw hat) is not seen, nor a
black or brown hat, a hood over curls or a balaclava (its knit is taken for the face's skin);
white or grey hair, or dyed hair, combed over the forehead reads as a hat. On stills the crown is
also read with the hair model (``crown=True``, kiosk.vision.hair), which finds most of those.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from kiosk.vision.hair import Crown, crown_covering
from kiosk.vision.hair import rules as crown_rules
from kiosk.vision.mesh import BROWS, FOREHEAD

DATA = Path(__file__).parent / "data" / "accessories.toml"

IED = 48.0  # inter-eye distance of the levelled crop, pixels
SIZE = (192, 256)  # crop width, height
EYES_AT = (96.0, 150.0)  # eye midpoint in the crop: room above for the crown
SKIN_POINTS = (9, 168, 6, 197, 195, 118, 347, 101, 330)  # glabella, nose bridge, upper cheeks
BAND_X = (109, 338)  # the band's left and right edge: mesh points above the inner brows


@dataclass(frozen=True)
class CoveringRules:
    band: tuple[float, float]  # the forehead band, fractions of the way from the mesh top to the brows
    skin_delta: float  # Lab distance (L weighted) under which a pixel counts as the face's skin
    l_weight: float  # weight of lightness in that distance (shading varies over a forehead)
    covered_below: float  # a forehead with less skin than this share is covered
    min_chroma: tuple[float, float]  # a skin patch's minimum a*, b* above neutral (128)
    hair_hue: tuple[float, float]  # hue angles (degrees, a*b* plane) of natural hair colours
    hair_min_chroma: float  # ... at this chroma or more
    black_max_l: float  # a near-neutral covering this dark (L*, 0-255) is black hair
    crown: tuple[float, float]  # the band above the mesh top, in forehead heights (negative: above)
    grey_max_chroma: float  # a face whose every skin sample is less colourful than this is a grey photo
    min_in_image: float  # share of a band that must come from inside the image to be read
    crown_fringe_delta: float  # Lab distance under which the crown is the fringe's own hair


@lru_cache(maxsize=1)
def rules() -> CoveringRules:
    t = tomllib.loads(DATA.read_text("utf-8"))["head_covering"]
    return CoveringRules(
        tuple(t["band"]), t["skin_delta"], t["l_weight"], t["covered_below"], tuple(t["min_chroma"]),
        tuple(t["hair_hue"]), t["hair_min_chroma"], t["black_max_l"], tuple(t["crown"]),
        t["grey_max_chroma"], t["min_in_image"], t["crown_fringe_delta"],
    )  # fmt: skip


@dataclass(frozen=True)
class HeadCovering:
    """The forehead's share of bare skin and, when covered, how far the covering is from hair."""

    forehead_skin: float  # 0-1: share of the forehead band that is the face's skin
    hair: bool | None  # when the forehead is covered: whether by something hair-coloured (a fringe)
    covered: bool  # a head covering: the forehead covered by what is not hair, or a fringe under a hat
    covering_lab: tuple[float, float, float] | None = None  # median CIELAB (OpenCV 8-bit scale) of it
    crown: Crown | None = None  # the hair model's reading of the head above the brows (stills)
    forehead_covered: bool | None = None  # the colour rule's own verdict, before the crown is read

    def to_json(self) -> dict:
        out = {"forehead_skin": round(self.forehead_skin, 3), "hair": self.hair, "covered": self.covered}
        if self.crown is not None:
            out["crown"] = self.crown.to_json()
        return out


def head_covering(
    rgb: np.ndarray, landmarks: np.ndarray, eye_centers: np.ndarray, crown: bool = False
) -> HeadCovering | None:
    """Whether a hat, cap, hood or band covers the head; None when not measurable.

    The forehead's colour always; with ``crown`` also the hair model around the crown (about 60 ms
    CPU): a covering above the brows that is neither hair nor skin is a hat, unless it wraps the
    face beside the cheeks while the forehead is bare (a religious head covering, face visible).
    """
    hc = _forehead_covering(rgb, landmarks, eye_centers)
    if hc is None or not crown:
        return hc
    c = crown_covering(rgb, landmarks)
    if c is None:
        return replace(hc, forehead_covered=hc.covered)
    return replace(hc, covered=hc.covered or crown_hat(c), crown=c, forehead_covered=hc.covered)


def crown_hat(c: Crown) -> bool:
    """A hat by the crown alone: covered above the brows, and not wrapping the face as a headscarf
    does (which, the forehead bare, is a religious covering with the face visible)."""
    return c.covered and c.wrap < crown_rules().wrap_min


def _inside(m: np.ndarray, shape: tuple[int, ...], y0: int, y1: int, x0: int, x1: int) -> float:
    """Share of the crop rectangle [y0,y1) x [x0,x1) that maps inside the source image."""
    ys, xs = np.mgrid[y0:y1:2, x0:x1:2]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    src = (pts - m[:, 2]) @ np.linalg.inv(m[:, :2]).T
    h, w = shape[:2]
    ok = (src[:, 0] >= 0) & (src[:, 0] < w) & (src[:, 1] >= 0) & (src[:, 1] < h)
    return float(ok.mean()) if ok.size else 0.0


def _level(eye_left: np.ndarray, eye_right: np.ndarray) -> np.ndarray:
    """Similarity map putting the eyes level, IED apart, their midpoint at EYES_AT."""
    d = eye_right - eye_left
    s = IED / max(float(np.hypot(*d)), 1e-6)
    a = -np.arctan2(d[1], d[0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    t = np.asarray(EYES_AT) - rot @ ((eye_left + eye_right) / 2)
    return np.hstack([rot, t[:, None]])


def _crop(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 0.5:  # shrink first (area), so the warp does not alias a large image
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb, (max(1, round(w * scale * 2)), max(1, round(h * scale * 2))), cv2.INTER_AREA)
        m = m @ np.array([[w / small.shape[1], 0, 0], [0, h / small.shape[0], 0], [0, 0, 1]])
        rgb = small
    return cv2.warpAffine(rgb, m, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _patch(lab: np.ndarray, p: np.ndarray, r: int = 2) -> np.ndarray:
    x, y = int(round(p[0])), int(round(p[1]))
    h, w = lab.shape[:2]
    return lab[max(y - r, 0) : min(y + r + 1, h), max(x - r, 0) : min(x + r + 1, w)].reshape(-1, 3)


def _forehead_covering(
    rgb: np.ndarray, landmarks: np.ndarray, eye_centers: np.ndarray
) -> HeadCovering | None:
    """Whether the forehead is covered by a hat, cap, hood or band; None when not measurable."""
    r = rules()
    m = _level(eye_centers[0], eye_centers[1])
    crop = _crop(rgb, m)
    lm = landmarks[:, :2] @ m[:, :2].T + m[:, 2]
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    patches = [np.median(_patch(lab, lm[i]), axis=0) for i in SKIN_POINTS]
    skin_like = [p for p in patches if p[1] - 128 >= r.min_chroma[0] and p[2] - 128 >= r.min_chroma[1]]
    if len(skin_like) < 2:  # a grey photo, a face in coloured light: every sample, by majority
        skin_like = patches
    skin = np.median(skin_like, axis=0)
    weight = np.array([r.l_weight, 1.0, 1.0], np.float32)

    def far(px: np.ndarray) -> np.ndarray:
        return np.linalg.norm((px - skin) * weight, axis=-1) > r.skin_delta

    top, brow = float(lm[FOREHEAD, 1]), float(lm[list(BROWS), 1].min())
    if brow - top < 4:
        return None
    y0, y1 = (int(round(top + f * (brow - top))) for f in r.band)
    x0, x1 = int(round(lm[BAND_X[0], 0])), int(round(lm[BAND_X[1], 0]))
    h, w = lab.shape[:2]
    y0, y1, x0, x1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
    if y1 - y0 < 2 or x1 - x0 < 4 or _inside(m, rgb.shape, y0, y1, x0, x1) < r.min_in_image:
        return None  # the forehead is not in the picture (a close-up, a face at the top edge)
    band = lab[y0:y1, x0:x1].reshape(-1, 3)
    cover = far(band)
    skin_share = float(1.0 - cover.mean())
    if skin_share >= r.covered_below:
        return HeadCovering(skin_share, None, False)
    chroma = np.hypot(np.asarray(patches)[:, 1] - 128.0, np.asarray(patches)[:, 2] - 128.0)
    if float(chroma.max()) < r.grey_max_chroma:
        return None  # a grey photo: a fringe and a hat differ only by colour
    # covered: by hair (a fringe) or by a hat. Natural hair is warm (black to brown, blond, red)
    # or, when black, dark and grey; a hat's fabric is any colour, in these photos neutral or cool
    covering = np.median(band[cover], axis=0)
    hair = _hair_coloured(covering, r)
    lab_t = (float(covering[0]), float(covering[1]), float(covering[2]))
    if hair:  # a fringe: is the crown above it hair too, or a hat?
        hair = _crown_is_hair(lab, m, rgb.shape, top, brow - top, x0, x1, far, r, covering)
    return HeadCovering(skin_share, hair, not hair, lab_t)


def _crown_is_hair(
    lab: np.ndarray, m: np.ndarray, shape: tuple[int, ...], top: float, height: float, x0: int, x1: int,
    far: Callable[[np.ndarray], np.ndarray], r: CoveringRules, fringe: np.ndarray,
) -> bool:  # fmt: skip
    """Whether what lies just above the mesh top, over a fringe, is hair (True when unreadable):
    hair-coloured, or of the fringe's own colour (dark auburn curls read outside the hair hues)."""
    y0, y1 = (int(round(top + f * height)) for f in r.crown)
    y0, y1 = max(y0, 0), min(y1, lab.shape[0])
    if y1 - y0 < 2 or _inside(m, shape, y0, y1, x0, x1) < r.min_in_image:
        return True
    px = lab[y0:y1, x0:x1].reshape(-1, 3)
    px = px[far(px)]  # a bald or high crown is skin: only what is not skin can be a hat
    if len(px) < 0.5 * (y1 - y0) * (x1 - x0):
        return True
    crown = np.median(px, axis=0)
    return _hair_coloured(crown, r) or float(np.linalg.norm(crown - fringe)) < r.crown_fringe_delta


def _hair_coloured(lab: np.ndarray, r: CoveringRules) -> bool:
    """Whether an (OpenCV 8-bit) CIELAB colour is a natural hair colour (rules: accessories.toml)."""
    a, b = float(lab[1]) - 128.0, float(lab[2]) - 128.0
    chroma = float(np.hypot(a, b))
    hue = float(np.degrees(np.arctan2(b, a)))
    warm = chroma >= r.hair_min_chroma and r.hair_hue[0] <= hue <= r.hair_hue[1]
    black = float(lab[0]) <= r.black_max_l and chroma < r.hair_min_chroma
    return warm or black
