"""Plain result types of the face analysis; every coordinate is in pixels of the input image."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kiosk.vision.glasses import Glasses


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees. yaw > 0: the person turns to their left (face points to image right);
    pitch > 0: chin up; roll > 0: head tilted so that the image-right eye is lower (clockwise on screen)."""

    yaw: float
    pitch: float
    roll: float


@dataclass
class Detection:
    """One face from the short-range detector."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: (
        np.ndarray
    )  # (6, 2): right eye, left eye, nose tip, mouth, right ear, left ear (subject's sides)


@dataclass
class Face:
    """One analysed face: detector output, the 468-point mesh and the measures derived from it."""

    detection: Detection | None
    landmarks: np.ndarray  # (468, 3): x, y in pixels, z in the same scale as x (relative depth)
    presence: float  # face-landmark model's face-presence probability
    box: tuple[float, float, float, float]  # tight box of the landmarks (x0, y0, x1, y1)
    pose: Pose
    # (image-left eye, image-right eye): lid gap / eye width, on the iris model's eyelid contour
    # when it ran (eye_state is then set), else on the 468-point mesh (which cannot see closed eyes)
    eye_openness: tuple[float, float]
    mouth_openness: float  # lip gap / mouth width
    eye_centers: np.ndarray  # (2, 2): image-left eye centre, image-right eye centre
    inter_eye_distance: float  # distance between the eye centres, pixels
    chin: tuple[float, float]
    crown: tuple[float, float]  # estimated top of the skull (hair not included)
    iris: np.ndarray | None = None  # (2, 5, 2) iris centre + 4 contour points per eye, when computed
    gaze: tuple[float, float] | None = None  # (horizontal, vertical) iris offset in eye widths
    eye_contours: np.ndarray | None = None  # (2, 71, 2) the iris model's eye contours, when computed
    eye_state: tuple[str, str] | None = None  # "open"/"closed" per eye, from the eyelid contour
    glasses: Glasses | None = None  # a spectacle frame's evidence (stills; None: not measured)

    @property
    def score(self) -> float:
        return self.detection.score if self.detection is not None else self.presence


@dataclass
class Analysis:
    """Everything found in one image or frame."""

    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    scale: float = 1.0  # analysed copy size / input size (1.0 when not downscaled)
    unmeshed: int = 0  # faces in view the mesh could not follow (a 30 px face behind): counted, not measured
