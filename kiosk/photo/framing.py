"""Is the whole head in the source? Where the person mask meets the edge of what the camera saw.

A head cut by the photo's edge must not become a flat-topped head: the composer would otherwise
fill the missing hair with background. Pure functions on masks; the check ``head_in_frame`` reads
their result (limits in profiles.toml: ``head_in_frame_margin``, ``head_in_frame_touch_max``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PERSON = 0.5  # person probability at or above which a pixel is the person


@dataclass
class EdgeContact:
    """How much of the person lies at the source's edge, in pixels of edge length."""

    head: float  # person along the edge (within the margin) above the chin: hair or head cut
    body: float  # person along the edge inside the photo: the crop would need pixels not seen
    crown_margin: float  # distance from the landmark crown to the nearest unseen pixel (inf: none)

    def worst(self, width: int) -> float:
        """The longer contact as a fraction of the photo's width (the check's value)."""
        return max(self.head, self.body) / max(width, 1)


def _disc(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def edge_contact(
    person: np.ndarray,
    seen: np.ndarray,
    chin_y: float,
    rows: tuple[int, int],
    margin: int,
    crown: tuple[float, float] | None = None,
) -> EdgeContact:
    """Person pixels near the border between what the source shows (`seen`) and what it does not.

    `person` must be a mask of an image whose unseen part was filled by extending the edge (so a
    person cut by the edge continues into it); `rows` are the photo's rows within that image.
    Near the head (above `chin_y`) the band is `margin` px wide on either side of the border, so
    hair that only nearly touches the edge counts too; elsewhere in the photo 2 px.
    """
    seen = seen.astype(bool)
    h, w = seen.shape
    if seen.all():
        return EdgeContact(0.0, 0.0, float("inf"))
    fg = person >= PERSON
    unseen = (~seen).astype(np.uint8)
    seen8 = seen.astype(np.uint8)
    yy = np.arange(h)[:, None]

    def along(r: int, zone: np.ndarray) -> float:
        band = cv2.dilate(unseen, _disc(r)).astype(bool) & cv2.dilate(seen8, _disc(r)).astype(bool)
        return float((band & fg & zone).sum()) / (2 * r)  # the band is 2r px across the border

    head_zone = np.broadcast_to(yy < chin_y, (h, w))
    photo_zone = np.broadcast_to((yy >= rows[0]) & (yy < rows[1]), (h, w))
    margin = max(1, int(margin))
    crown_margin = float("inf")
    if crown is not None:
        dist = cv2.distanceTransform(seen8, cv2.DIST_L2, 3)
        x, y = round(crown[0]), round(crown[1])
        crown_margin = float(dist[y, x]) if 0 <= x < w and 0 <= y < h else 0.0
    return EdgeContact(along(margin, head_zone), along(2, photo_zone), crown_margin)


def image_edge_contact(person: np.ndarray, eye_y: float, margin: int) -> EdgeContact:
    """The same for a finished image: hair at (or within `margin` of) its top edge, above the eyes.

    Only the top edge: a document photo's sides may crop wide hair (the face from ear to ear is
    what the rules ask for), and its bottom edge always cuts the body. A head cut at a side of the
    source is caught by make-photo on the source (edge_contact), where the cut is known.
    """
    h, w = person.shape
    pad = max(1, int(margin)) + 2
    big = cv2.copyMakeBorder(person.astype(np.float32), pad, 0, 0, 0, cv2.BORDER_REPLICATE)
    seen = np.zeros(big.shape, bool)
    seen[pad:] = True
    c = edge_contact(big, seen, eye_y + pad, (pad, pad + h), margin)
    return EdgeContact(c.head, 0.0, c.crown_margin)
