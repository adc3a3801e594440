"""Hair segmentation (MediaPipe's hair model, 512x512 RGBA) and what it tells about a head covering.

The colour rule of kiosk.vision.accessories reads only the forehead, so a hat worn high (a beanie,
a top hat, a peaked cap above the brows, a balaclava's knit) passes it. This module reads the head
above the brows instead: around the crown, the person (selfie model) is hair, face skin, or
something else — a hat's crown or brim, a hood. The share of the person above the brows and
outside the face oval that is neither hair nor skin is ``crown``; a headscarf that wraps the face
also fills the band beside the cheeks (``wrap``). Limits (README, "Compliance on real photos"): a
hood or a hat of the hair's own colour and texture is read as hair; a shiny bald crown can read
up to 0.45 (the limit is 0.5). Stills only by default: one run costs about 30 ms CPU.
"""

from __future__ import annotations

import threading
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from kiosk.vision import segmentation
from kiosk.vision.mesh import BROWS, FACE_OVAL, FOREHEAD
from kiosk.vision.runtime import Model, models_dir
from kiosk.vision.segmentation import PersonSegmenter

MODEL_FILE = "hair_segmentation.tflite"
DATA = Path(__file__).parent / "data" / "accessories.toml"
SIZE = 512
SKIN_POINTS = (9, 168, 6, 197, 195, 118, 347, 101, 330)  # glabella, nose bridge, upper cheeks
CHIN = 152
EYE_OUTER = (33, 263)


@dataclass(frozen=True)
class CrownRules:
    crop_side: float  # the square crop's side, in mesh heights (mesh top to chin)
    crop_up: float  # the crop centre above the mesh centre, in mesh heights
    hair_min: float  # hair probability from which a pixel is hair
    person_min: float  # person probability from which a pixel is the person
    skin_delta: float  # Lab distance (L weighted) under which a pixel is the face's skin
    l_weight: float
    side_width: float  # how far above/around the face the crown region reaches, in face widths
    covered_min: float  # crown share from which the head is covered
    wrap_band: float  # width of the band beside the cheeks, in face widths
    wrap_min: float  # wrap share from which the covering wraps the face (a headscarf, a hood)


@lru_cache(maxsize=1)
def rules() -> CrownRules:
    t = tomllib.loads(DATA.read_text("utf-8"))["head_covering"]["crown_model"]
    return CrownRules(
        t["crop_side"], t["crop_up"], t["hair_min"], t["person_min"], t["skin_delta"], t["l_weight"],
        t["side_width"], t["covered_min"], t["wrap_band"], t["wrap_min"],
    )  # fmt: skip


@dataclass(frozen=True)
class Crown:
    """What covers the head above the brows, read from the hair and person masks."""

    crown: float  # 0-1: share of the person above the brows, outside the face, that is neither hair nor skin
    wrap: float  # 0-1: share of the band beside the cheeks that is neither hair, skin nor background
    covered: bool  # crown >= covered_min

    def to_json(self) -> dict:
        return {"crown": round(self.crown, 3), "wrap": round(self.wrap, 3), "covered": self.covered}


class HairSegmenter:
    """The hair model on a square crop around the head; a still has no previous mask (4th channel 0)."""

    def __init__(self, num_threads: int = 2):
        self.model = Model(models_dir() / MODEL_FILE, num_threads)

    def probability(self, crop: np.ndarray) -> np.ndarray:
        """float32 512x512 hair probability of a 512x512 RGB uint8 crop (softmax of two logits)."""
        x = np.zeros((SIZE, SIZE, 4), np.float32)
        x[..., :3] = crop.astype(np.float32) * (1.0 / 255.0)
        logits = self.model(x)[0][0]
        return (1.0 / (1.0 + np.exp(logits[..., 0] - logits[..., 1]))).astype(np.float32)


_lock = threading.Lock()  # the hair interpreter: one run at a time (live's crown thread, make-photo)


@lru_cache(maxsize=1)
def _hair_model() -> HairSegmenter:
    """Loaded at the first crown reading (~29 MB with its first run), never before."""
    return HairSegmenter()


def person_segmenter() -> PersonSegmenter:
    """The process's one person segmenter, the photo engine's (kiosk.vision.segmentation.shared)."""
    return segmentation.shared()


def crown_covering(rgb: np.ndarray, landmarks: np.ndarray) -> Crown | None:
    """The crown and wrap shares of the face with these mesh landmarks; None when not measurable
    (the head mostly outside the image). Loads the hair model on first use; the person model is the
    process's shared one."""
    r = rules()
    lm = landmarks[:, :2].astype(np.float64)
    top, chin = float(lm[FOREHEAD, 1]), float(lm[CHIN, 1])
    height = chin - top
    width = float(lm[:, 0].max() - lm[:, 0].min())
    if height < 8 or width < 8:
        return None
    cx = float(lm[list(EYE_OUTER), 0].mean())
    cy = (top + chin) / 2 - r.crop_up * height
    s = SIZE / (r.crop_side * height)
    m = np.array([[s, 0.0, SIZE / 2 - s * cx], [0.0, s, SIZE / 2 - s * cy]])
    flags = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(rgb, m, (SIZE, SIZE), flags=flags, borderValue=(0, 0, 0))
    inside = cv2.warpAffine(np.ones(rgb.shape[:2], np.uint8), m, (SIZE, SIZE), flags=cv2.INTER_NEAREST) > 0
    with _lock:
        hair = _hair_model().probability(crop) >= r.hair_min
    person = person_segmenter().mask(crop) >= r.person_min  # under the segmenter's own lock
    pts = lm @ m[:, :2].T + m[:, 2]
    oval = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(oval, [pts[list(FACE_OVAL)].round().astype(np.int32)], 1)
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
    at = np.clip(pts[list(SKIN_POINTS)].round().astype(int), 0, SIZE - 1)
    samples = [lab[y, x] for x, y in at]
    skin_lab = np.median(np.stack(samples), axis=0)
    weight = np.array([r.l_weight, 1.0, 1.0], np.float32)
    skin = np.linalg.norm((lab - skin_lab) * weight, axis=-1) < r.skin_delta
    other = person & ~hair & ~skin & inside  # the person, but neither hair nor skin: fabric
    yy, xx = np.mgrid[:SIZE, :SIZE]
    w = width * s
    brow = float(pts[list(BROWS), 1].min())
    region = (yy < brow) & (np.abs(xx - SIZE / 2) < r.side_width * w) & person & inside & (oval == 0)
    if region.sum() < 0.02 * SIZE * SIZE:
        return None  # the head above the brows is not in the picture
    crown = float((other & region).sum() / region.sum())
    k = max(3, int(r.wrap_band * w) | 1)
    beside = cv2.dilate(oval, np.ones((k, k), np.uint8)).astype(bool) & (oval == 0) & inside
    eye_y, chin_y = float(pts[list(EYE_OUTER), 1].mean()), float(pts[CHIN, 1])
    beside &= (yy > eye_y) & (yy < eye_y + 0.6 * (chin_y - eye_y))
    wrap = float((other & beside).sum() / max(int(beside.sum()), 1))
    return Crown(crown, wrap, crown >= r.covered_min)
