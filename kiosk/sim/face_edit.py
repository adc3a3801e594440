"""Edits of a real face photo driven by its face-mesh landmarks: closing the eyes (a blink).

The simulated camera needs a subject who blinks, and the eyes checks need faces with closed eyes;
no fixture photo has them, so they are made by construction from a real face: the upper eyelid is
slid down over the eyeball like a real lid (a piecewise-affine warp between the mesh's eye rings),
so the lid skin and lashes cover the eye and the face-mesh model reads a closed eye.
"""

from __future__ import annotations

import cv2
import numpy as np

from kiosk.vision.mesh import EYE_LOWER0, EYE_UPPER

# How far each upper ring travels, as a share of the lid margin's travel: the margin meets the
# lower lid, the crease follows part way (the lid skin unfolds), ring 2 and the brow stay.
RING_TRAVEL = (1.0, 0.9, 0.45, 0.0)
LASH_DARKEN = 0.3  # darkening of the closed lid line at full closure (lashes meeting)
LASH_WIDTH = 0.035  # lash line half-width, eye widths


def _triangles(top: np.ndarray, bottom: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The strip between two 9-point rings as triangles of indices into (top, bottom) pairs."""
    tris = []
    for i in range(len(top) - 1):
        tris.append(
            (np.array([top[i], top[i + 1], bottom[i]]), np.array([top[i + 1], bottom[i + 1], bottom[i]]))
        )
    return tris


def _fill_map(
    map_x: np.ndarray, map_y: np.ndarray, dst: np.ndarray, src: np.ndarray, origin: tuple[int, int]
) -> None:
    """Set the backward map inside the destination triangle ``dst`` to the affine map onto ``src``."""
    x0, y0 = origin
    h, w = map_x.shape
    area = (dst[1, 0] - dst[0, 0]) * (dst[2, 1] - dst[0, 1]) - (dst[2, 0] - dst[0, 0]) * (
        dst[1, 1] - dst[0, 1]
    )
    if abs(area) < 1e-3:
        return
    lo = np.floor(dst.min(axis=0)).astype(int) - (x0, y0)
    hi = np.ceil(dst.max(axis=0)).astype(int) - (x0, y0) + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, (w, h))
    if np.any(hi <= lo):
        return
    gy, gx = np.mgrid[lo[1] : hi[1], lo[0] : hi[0]].astype(np.float64)
    px, py = gx + x0, gy + y0  # pixel centres at integer coordinates (cv2.remap's convention)
    # barycentric coordinates; a small tolerance so shared edges leave no seam
    (ax, ay), (bx, by), (cx, cy) = dst
    l1 = ((by - cy) * (px - cx) + (cx - bx) * (py - cy)) / area
    l2 = ((cy - ay) * (px - cx) + (ax - cx) * (py - cy)) / area
    l3 = 1.0 - l1 - l2
    eps = 1e-3
    inside = (l1 >= -eps) & (l2 >= -eps) & (l3 >= -eps)
    sx = l1 * src[0, 0] + l2 * src[1, 0] + l3 * src[2, 0]
    sy = l1 * src[0, 1] + l2 * src[1, 1] + l3 * src[2, 1]
    sub_x = map_x[lo[1] : hi[1], lo[0] : hi[0]]
    sub_y = map_y[lo[1] : hi[1], lo[0] : hi[0]]
    sub_x[inside] = sx[inside]
    sub_y[inside] = sy[inside]


def close_eyes(
    rgb: np.ndarray, landmarks: np.ndarray, amount: float | tuple[float, float] = 1.0
) -> np.ndarray:
    """A copy of ``rgb`` with the eyes closed by ``amount`` (0: as is, 1: shut); a pair closes the
    image-left and image-right eye separately (a wink). ``landmarks``: the (468, 2+) face mesh in
    ``rgb``'s pixels. Works on any channel count (the simulated camera warps a 4th channel along).
    """
    amounts = (amount, amount) if np.isscalar(amount) else tuple(amount)
    if len(amounts) != 2:
        raise ValueError("amount: one value or one per eye")
    out = rgb.copy()
    lm = np.asarray(landmarks, np.float64)[:, :2]
    h, w = rgb.shape[:2]
    for eye in range(2):
        a = float(np.clip(amounts[eye], 0.0, 1.0))
        if a <= 0.0:
            continue
        r0, r1, r2 = (lm[list(r)] for r in EYE_UPPER[eye])
        rings = [r0, r1, (r1 + r2) / 2, r2]
        lower = lm[list(EYE_LOWER0[eye])]
        width = float(np.hypot(*(lower[-1] - lower[0])))
        travel = (lower - rings[0]) * a  # the margin slides onto the lower lid, point by point
        moved = [r + travel * k for r, k in zip(rings, RING_TRAVEL, strict=True)]
        box = np.vstack([*rings, lower])
        pad = int(np.ceil(0.1 * width)) + 2
        x0, y0 = (np.floor(box.min(axis=0)).astype(int) - pad).clip(0)
        x1, y1 = np.minimum(np.ceil(box.max(axis=0)).astype(int) + pad + 1, (w, h))
        if x1 <= x0 or y1 <= y0:
            continue
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        map_x, map_y = gx.copy(), gy.copy()  # identity: the eyeball stays where it is, the lid covers it
        for k in range(len(rings) - 1):  # strips between the rings, moved
            for tt, bb in _triangles(np.arange(9), np.arange(9) + 9):
                src_pts = np.vstack([rings[k + 1], rings[k]])
                dst_pts = np.vstack([moved[k + 1], moved[k]])
                _fill_map(map_x, map_y, dst_pts[tt], src_pts[tt], (x0, y0))
                _fill_map(map_x, map_y, dst_pts[bb], src_pts[bb], (x0, y0))
        patch = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out[y0:y1, x0:x1] = patch
        # the lashes of both lids meet along the closed line: a soft dark line as the eye shuts
        strength = LASH_DARKEN * np.clip((a - 0.7) / 0.3, 0.0, 1.0)
        if strength > 0:
            line = np.zeros((y1 - y0, x1 - x0), np.float32)
            pts = np.round((moved[0] - (x0, y0)) * 4).astype(np.int32)
            thick = max(1, int(round(2 * LASH_WIDTH * width * 4)))
            cv2.polylines(line, [pts], False, 1.0, thickness=thick, lineType=cv2.LINE_AA, shift=2)
            line = cv2.GaussianBlur(line, (0, 0), max(0.5, LASH_WIDTH * width))
            shade = 1.0 - strength * np.clip(line / max(float(line.max()), 1e-6), 0, 1)
            region = out[y0:y1, x0:x1, :3].astype(np.float32) * shade[..., None]
            out[y0:y1, x0:x1, :3] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
    return out
