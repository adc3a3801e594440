"""BlazeFace face detectors (short range and full range): anchors, decoding and weighted NMS as
MediaPipe does it.

The constants are those of MediaPipe's face_detection_short_range and face_detection_full_range
graphs (SsdAnchorsCalculator and TensorsToDetectionsCalculator options) so that boxes and
keypoints match the reference. The short-range model (128 px input) sees faces within about 2 m
of a phone camera; in a photo of a hall it misses the small faces behind. The full-range model
(192 px, one 48x48 anchor grid) finds faces down to about 5 % of the image: it counts the people.

The full-range input is resampled as MediaPipe's ImageToTensorCalculator does it (``mediapipe_letterbox``):
its faces are 6-10 tensor pixels wide, and OpenCV 5's float-precise warp shifted their scores by
up to 0.008 against MediaPipe's, enough to flip 30 px faces across the 0.6 limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from kiosk.vision.geometry import Roi, crop
from kiosk.vision.runtime import Model, models_dir
from kiosk.vision.types import Detection

SCORE_CLIP = 100.0
NMS_IOU = 0.3
NUM_KEYPOINTS = 6
INTER_BITS = 5  # OpenCV's fixed-point remap: coordinates in 1/32 pixel
INTER_TAB = 1 << INTER_BITS


@dataclass(frozen=True)
class DetectorSpec:
    """One BlazeFace variant: its model file and its graph's anchor and decoding options."""

    model: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_layer: int  # 2 with interpolated_scale_aspect_ratio = 1, 1 when it is 0
    min_score: float  # the graph's min_score_thresh


SHORT_RANGE = DetectorSpec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 0.5)
FULL_RANGE = DetectorSpec("face_detection_full_range_sparse.tflite", 192, (4,), 1, 0.6)

# the short-range constants, as before (tests and callers use them)
INPUT_SIZE = SHORT_RANGE.input_size
STRIDES = SHORT_RANGE.strides


@lru_cache(maxsize=4)
def anchors(spec: DetectorSpec = SHORT_RANGE) -> np.ndarray:
    """(N, 2) anchor centres in [0,1]; fixed anchor size 1 (896 short range, 2304 full range)."""
    strides = spec.strides
    out = []
    layer = 0
    while layer < len(strides):
        # layers sharing a stride share one feature map; each contributes its anchors per cell
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        per_cell = spec.anchors_per_layer * (last - layer)
        fm = int(np.ceil(spec.input_size / strides[layer]))
        ys, xs = np.mgrid[0:fm, 0:fm]
        centres = np.stack([(xs + 0.5) / fm, (ys + 0.5) / fm], axis=-1).reshape(-1, 2)
        out.append(np.repeat(centres, per_cell, axis=0))
        layer = last
    return np.concatenate(out).astype(np.float32)


def letterbox_roi(width: int, height: int) -> Roi:
    """The square region, centred on the image, that keeps the aspect ratio (zero padding)."""
    side = float(max(width, height))
    return Roi(width / 2.0, height / 2.0, side, side, 0.0)


def mediapipe_letterbox(rgb: np.ndarray, size: int) -> np.ndarray:
    """The letterboxed size x size input exactly as MediaPipe 0.10's ImageToTensorCalculator makes it.

    MediaPipe maps the padded square ROI (cv::boxPoints corners, getPerspectiveTransform) with
    cv::warpPerspective, bilinear, in the OpenCV it bundles: source coordinates rounded to 1/32
    pixel and 15-bit weights. OpenCV 5's warp interpolates at full precision, which moves small
    faces' scores; cv2.remap with fixed-point maps is that older bilinear, bit for bit. The matrix
    is inverted by OpenCV's LU as warpPerspective does (numpy's inverse differs in the last bits,
    which moves some 1/32 px roundings).
    """
    ints, frac = _letterbox_maps(rgb.shape[1], rgb.shape[0], size)
    return cv2.remap(rgb, ints, frac, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@lru_cache(maxsize=8)
def _letterbox_maps(w: int, h: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap's fixed-point maps (integer pixel, 1/32 fraction) of the letterbox: one per image size."""
    side = float(max(w, h))
    src = cv2.boxPoints(((w / 2.0, h / 2.0), (side, side), 0.0)).astype(np.float32)
    dst = np.float32([[0, size], [0, 0], [size, 0], [size, size]])
    inv = cv2.invert(cv2.getPerspectiveTransform(src, dst))[1]  # output -> source, OpenCV's own LU
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    wz = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
    wz = np.where(wz != 0, INTER_TAB / np.where(wz != 0, wz, 1.0), 0.0)
    fx = np.rint((inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) * wz).astype(np.int64)
    fy = np.rint((inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) * wz).astype(np.int64)
    lim = np.iinfo(np.int16)
    ints = np.stack([fx >> INTER_BITS, fy >> INTER_BITS], axis=-1).clip(lim.min, lim.max).astype(np.int16)
    frac = ((fy & (INTER_TAB - 1)) * INTER_TAB + (fx & (INTER_TAB - 1))).astype(np.uint16)
    ints.flags.writeable = frac.flags.writeable = False
    return ints, frac


def decode(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, min_score: float, spec: DetectorSpec = SHORT_RANGE
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N,4 as x0,y0,x1,y1) + keypoints (N,6,2) in [0,1] of the input tensor, and scores."""
    scores = 1.0 / (
        1.0 + np.exp(-np.clip(raw_scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP))
    )
    keep = scores >= min_score
    if not np.any(keep):
        return np.zeros((0, 4 + 2 * NUM_KEYPOINTS), np.float32), np.zeros(0, np.float32)
    raw = raw_boxes.reshape(-1, 16)[keep] / spec.input_size
    anc = anchors(spec)[keep]
    cx = raw[:, 0] + anc[:, 0]
    cy = raw[:, 1] + anc[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    kp = raw[:, 4:].reshape(-1, NUM_KEYPOINTS, 2) + anc[:, None, :]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return np.concatenate([boxes, kp.reshape(-1, 2 * NUM_KEYPOINTS)], axis=1), scores[keep]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    return float(_iou(np.asarray(a[:4], float), np.asarray([b[:4]], float))[0])


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    dets: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU
) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's WEIGHTED algorithm: each cluster is averaged by score, keeps the best score."""
    order = np.argsort(-scores, kind="stable")
    dets, scores = dets[order], scores[order]
    out = []
    remaining = np.arange(len(scores))
    while remaining.size:
        top = remaining[0]
        overlap = _iou(dets[top, :4], dets[remaining, :4])
        cluster = remaining[overlap > iou]
        if cluster.size == 0:  # degenerate box: still report it once
            cluster = remaining[:1]
        w = scores[cluster]
        merged = (dets[cluster] * w[:, None]).sum(axis=0) / w.sum()
        out.append((merged, float(scores[top])))
        remaining = remaining[overlap <= iou]
        remaining = remaining[remaining != top]
    return out


class FaceDetector:
    """All faces in an RGB image, in image pixels (short range unless given another spec)."""

    def __init__(
        self, num_threads: int = 2, min_score: float | None = None, spec: DetectorSpec = SHORT_RANGE
    ):
        self.spec = spec
        self.model = Model(models_dir() / spec.model, num_threads)
        self.min_score = spec.min_score if min_score is None else min_score

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        size = self.spec.input_size
        roi = letterbox_roi(rgb.shape[1], rgb.shape[0])
        if self.spec is FULL_RANGE:  # it counts 6-10 px faces: MediaPipe's exact resampling
            img = mediapipe_letterbox(rgb, size)
        else:
            img = crop(rgb, roi, size, size, border=cv2.BORDER_CONSTANT)
        raw_boxes, raw_scores = self.model.run_uint8(img, 2.0 / 255.0, -1.0)  # [-1, 1] as trained
        dets, scores = decode(raw_boxes, raw_scores, self.min_score, self.spec)
        # tensor coordinates [0,1] -> image pixels (letterbox removal; the ROI is axis-aligned)
        x0, y0 = roi.cx - roi.width / 2, roi.cy - roi.height / 2
        faces = []
        for merged, score in weighted_nms(dets, scores):
            pts = merged.reshape(-1, 2) * roi.width + np.array([x0, y0])
            box = pts[:2].reshape(-1)
            faces.append(Detection(box=tuple(float(v) for v in box), score=score, keypoints=pts[2:]))
        return faces
