"""The face-analysis pipeline: stills (detector every call, all faces) and video (tracked ROI).

Video follows MediaPipe's FaceMesh in video mode: the ROI for frame t comes from frame t-1's
landmarks and the detector runs only when the face-presence score says the face is lost. That
is where the real-time budget is won.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from kiosk.config import VisionConfig
from kiosk.errors import InputError
from kiosk.vision import face_measures as measures
from kiosk.vision.detector import FULL_RANGE, FaceDetector, iou
from kiosk.vision.geometry import Roi
from kiosk.vision.glasses import detect_glasses
from kiosk.vision.imageio import load_image, original_size
from kiosk.vision.iris import EYES, EyeLandmarks, IrisModel, carry, gaze
from kiosk.vision.landmarks import FaceMesh, roi_from_detection, roi_from_landmarks
from kiosk.vision.pose import head_pose
from kiosk.vision.types import Analysis, Detection, Face


class FaceAnalyzer:
    """Loads the models once; ``analyze`` for stills, ``track`` for consecutive video frames."""

    def __init__(self, config: VisionConfig | None = None):
        self.config = config or VisionConfig()
        n = self.config.num_threads
        self.detector = FaceDetector(n, self.config.min_detection_score)
        self.mesh = FaceMesh(n)
        self._iris: IrisModel | None = None
        self._full_range: FaceDetector | None = None
        self._eyes: tuple[EyeLandmarks, list] | None = None  # last eye reading of the track, its corners
        self._eye_turn = 0  # the eye the iris model reads next on the tracked path
        self._eye_wait = 0  # tracked frames left until that read (0: this frame)
        self._prev_lm: np.ndarray | None = None  # the last tracked frame's landmarks
        self._executor: ThreadPoolExecutor | None = None
        self._tracking: tuple[FaceMesh, IrisModel] | None = None  # the tracked path's own interpreters
        self._roi: Roi | None = None  # tracked ROI of the previous frame

    @property
    def iris_model(self) -> IrisModel:
        if self._iris is None:  # loaded on first use: video guidance does not need it
            self._iris = IrisModel(self.config.num_threads)
        return self._iris

    @property
    def full_range(self) -> FaceDetector:
        if self._full_range is None:  # loaded on first use: the tracked video path does not need it
            self._full_range = FaceDetector(self.config.num_threads, spec=FULL_RANGE)
        return self._full_range

    def detect_all(self, rgb: np.ndarray, full_range: bool = True) -> list[Detection]:
        """Every face in view: the short-range detections plus the full-range detector's others.

        The short-range model places close faces best (the mesh ROI follows it, as MediaPipe's
        FaceMesh does); the full-range one adds the small faces it misses (a second person behind).
        A face counts when at least half of its box lies inside the image (see ``in_view``).
        """
        return self._detections(rgb, full_range)[0]

    def _detections(self, rgb: np.ndarray, full_range: bool) -> tuple[list[Detection], list[Detection]]:
        """detect_all's faces in view, and the full-range detector's own (what live guidance counts)."""
        dets = self.detector.detect(rgb)
        full = self.full_range.detect(rgb) if full_range else []
        for d in full:
            if all(iou(d.box, k.box) <= OVERLAP_IOU for k in dets):
                dets.append(d)
        return [d for d in dets if in_view(d.box, rgb.shape[1], rgb.shape[0])], full

    def count_faces(self, rgb: np.ndarray) -> int:
        """How many faces are in view (full-range detector only): the periodic live check."""
        return sum(in_view(d.box, rgb.shape[1], rgb.shape[0]) for d in self.full_range.detect(rgb))

    def analyze(self, rgb: np.ndarray, iris: bool | None = None, full_range: bool = True) -> Analysis:
        """Every face in a still image, largest first (both detectors: see ``detect_all``).

        ``full_range=False`` runs the short-range detector only, as MediaPipe's FaceMesh does."""
        use_iris = self.config.iris if iris is None else iris
        faces = []
        dets, full = self._detections(rgb, full_range)
        unmeshed = 0
        for det in dets:
            face = self._face(rgb, roi_from_detection(det), det, use_iris)
            if face is not None:
                face.glasses = detect_glasses(rgb, face.eye_centers)  # stills only: 2-3 ms
                faces.append(face)
            elif any(iou(det.box, f.box) > OVERLAP_IOU for f in full):
                # a face the mesh rejects (a 30 px face behind) still counts, as live guidance (the
                # full-range detector) counts it; a short-range detection that neither the mesh nor
                # the full-range detector takes (a patch on a rotated photo's sleeve, 0.54) does not
                unmeshed += 1
        faces.sort(key=lambda f: -(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        return Analysis(width=rgb.shape[1], height=rgb.shape[0], faces=faces, unmeshed=unmeshed)

    def tracking_models(self) -> tuple[FaceMesh, IrisModel]:
        """The tracked path's interpreters: the mesh on the caller's thread and the iris model on the
        eye thread run at the same time, so they split the cores instead of each taking
        ``num_threads`` (the iris model one thread, the mesh the rest, at least one). Two threads
        each on a 2-core machine made a tracked frame with eye state ~40 % slower (benchmarks/vision.py).
        """
        if self._tracking is None:
            n = self.config.num_threads
            mesh = self.mesh if n == 1 else FaceMesh(n - 1)
            self._tracking = (mesh, self.iris_model if n == 1 else IrisModel(1))
        return self._tracking

    def track(self, rgb: np.ndarray, iris: bool = True) -> Analysis:
        """One face followed across frames; the detector runs only when tracking is lost.

        The iris model runs by default (live guidance needs the eye state) on one eye every
        ``eye_read_every`` frames, the eyes in turn (at 2 and 30 fps each eye's lids at 7.5 Hz, 4-5
        readings in the 0.6 s a closed eye must last); between readings the last ones are carried
        along with the face. The first frame of a track reads both; later reads run in parallel
        with the mesh."""
        face = None
        mesh, eye_model = self.tracking_models() if iris else (self.mesh, None)
        if self._roi is not None:
            pending = None
            due = self._eye_wait == 0
            if eye_model is not None and self._eyes is not None and self._prev_lm is not None and due:
                # the eye's ROI from the last frame's mesh (tracked, as MediaPipe tracks its ROIs):
                # the iris model reads it on a second core while the mesh runs on this one
                pending = self._pool().submit(eye_model.run_eye, rgb, self._prev_lm, self._eye_turn)
            try:
                face = self._face(rgb, self._roi, None, iris, tracked=True, pending=pending, mesh=mesh)
            finally:
                if pending is not None:
                    pending.result()  # never leave the interpreter running into the next frame
        if face is None:
            self._eyes = None
            dets = self.detector.detect(rgb)
            if dets:
                det = max(dets, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
                face = self._face(rgb, roi_from_detection(det), det, iris, tracked=True, mesh=mesh)
        self._roi = roi_from_landmarks(face.landmarks) if face is not None else None
        self._prev_lm = face.landmarks if face is not None else None
        return Analysis(width=rgb.shape[1], height=rgb.shape[0], faces=[face] if face else [])

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="kiosk-eyes")
        return self._executor

    def reset(self) -> None:
        """Forget the tracked face (new session, camera switched)."""
        self._roi = None
        self._eyes = None
        self._prev_lm = None

    def _face(
        self,
        rgb: np.ndarray,
        roi: Roi,
        det: Detection | None,
        use_iris: bool,
        tracked: bool = False,
        pending: Future | None = None,
        mesh: FaceMesh | None = None,
    ) -> Face | None:
        lm, presence = (mesh or self.mesh).run(rgb, roi)
        if presence < self.config.min_presence or not np.all(np.isfinite(lm)):
            return None
        eyes = None
        if use_iris:
            eyes = self._tracked_eyes(rgb, lm, pending) if tracked else self.iris_model.run(rgb, lm)
        return describe(lm, presence, det, (rgb.shape[1], rgb.shape[0]), eyes)

    def _tracked_eyes(self, rgb: np.ndarray, lm: np.ndarray, pending: Future | None = None) -> EyeLandmarks:
        """Both eyes' landmarks: one read now when its turn is due, the others carried (see ``track``).

        ``pending`` is the iris model already at work on this frame's eye (ROI from the last frame)."""
        corners = [(lm[a, :2].copy(), lm[b, :2].copy()) for a, b, _ in EYES]
        eye_model = self.tracking_models()[1]
        every = self.config.eye_read_every
        if self._eyes is None:
            eyes = eye_model.run(rgb, lm)
            self._eyes, self._eye_turn, self._eye_wait = (eyes, corners), 0, every - 1
            return eyes
        (prev, prev_corners), i = self._eyes, self._eye_turn
        contours, irises = prev.contours.copy(), prev.iris.copy()
        for k in range(2):
            contours[k] = carry(prev.contours[k], prev_corners[k], corners[k])
            irises[k] = carry(prev.iris[k], prev_corners[k], corners[k])
        if self._eye_wait == 0:
            read = pending.result() if pending is not None else eye_model.run_eye(rgb, lm, i)
            contours[i], irises[i] = read
            self._eye_turn, self._eye_wait = 1 - i, every - 1
        else:
            self._eye_wait -= 1
        eyes = EyeLandmarks(contours, irises)
        self._eyes = (eyes, corners)
        return eyes


OVERLAP_IOU = 0.3  # a full-range detection overlapping a short-range one this much is the same face
IN_VIEW_MIN = 0.5  # share of a face's box inside the image for the face to count


def in_view(box: tuple[float, float, float, float], width: int, height: int) -> bool:
    """A partial face at the edge counts when at least half of its box is inside the image.

    Less than that is a sliver (a cheek, an ear) that neither the photo nor a person counting
    faces would call a second face; more is a second person standing at the edge of the view.
    """
    x0, y0, x1, y1 = box
    area = max(x1 - x0, 0.0) * max(y1 - y0, 0.0)
    if area <= 0:
        return False
    inside = max(min(x1, width) - max(x0, 0.0), 0.0) * max(min(y1, height) - max(y0, 0.0), 0.0)
    return inside / area >= IN_VIEW_MIN


def describe(
    lm: np.ndarray,
    presence: float,
    det: Detection | None,
    size: tuple[int, int],
    eyes: EyeLandmarks | None = None,
) -> Face:
    """All measures of one face from its landmarks (pure: no model runs here)."""
    iris = eyes.iris if eyes is not None else None
    centres = measures.eye_centers(lm, iris)
    if eyes is not None:
        openness = measures.eyelid_aperture(eyes.contours)
        state = (measures.eye_state(openness[0]), measures.eye_state(openness[1]))
    else:
        openness, state = measures.eye_openness(lm), None
    return Face(
        detection=det,
        landmarks=lm,
        presence=presence,
        box=measures.landmark_box(lm),
        pose=head_pose(lm, size),
        eye_openness=openness,
        mouth_openness=measures.mouth_openness(lm),
        eye_centers=centres,
        inter_eye_distance=float(np.hypot(*(centres[1] - centres[0]))),
        chin=measures.chin(lm),
        crown=measures.crown(lm),
        iris=iris,
        gaze=gaze(lm, iris) if iris is not None else None,
        eye_contours=eyes.contours if eyes is not None else None,
        eye_state=state,
    )


def rescale(analysis: Analysis, factor: float, width: int, height: int) -> Analysis:
    """Map an analysis of a downscaled copy back to full-size pixel coordinates."""
    if factor == 1.0:
        return analysis
    faces = []
    for f in analysis.faces:
        det = f.detection
        if det is not None:
            det = Detection(tuple(v * factor for v in det.box), det.score, det.keypoints * factor)
        lm = f.landmarks * factor
        eyes = None
        if f.iris is not None and f.eye_contours is not None:
            eyes = EyeLandmarks(f.eye_contours * factor, f.iris * factor)
        face = describe(lm, f.presence, det, (width, height), eyes)
        face.glasses = f.glasses  # measured on the analysed copy: a verdict, not coordinates
        faces.append(face)
    return Analysis(width=width, height=height, faces=faces, scale=1.0 / factor, unmeshed=analysis.unmeshed)


def load_for_analysis(source: str | Path | bytes, max_side: int) -> tuple[np.ndarray, int, int]:
    """Decode an image for analysis: a copy no larger than max_side, plus the full (w, h)."""
    rgb = load_image(source, max_side=max_side)
    full_w, full_h = original_size(source)
    h, w = rgb.shape[:2]
    if max(w, h) > max_side:
        s = max_side / max(w, h)
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return rgb, full_w, full_h


def analyze_loaded(analyzer: FaceAnalyzer, rgb: np.ndarray, full_w: int, full_h: int) -> Analysis:
    """Analyse a copy from ``load_for_analysis``; results in full-size pixels."""
    return rescale(analyzer.analyze(rgb), full_w / rgb.shape[1], full_w, full_h)


def analyze_file(analyzer: FaceAnalyzer, source: str | Path | bytes) -> tuple[Analysis, np.ndarray]:
    """Analyse an image file; returns the analysis and the analysed (possibly downscaled) copy."""
    rgb, full_w, full_h = load_for_analysis(source, analyzer.config.analysis_max_side)
    return analyze_loaded(analyzer, rgb, full_w, full_h), rgb


def video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """RGB frames of a video file; InputError when it cannot be opened or holds no frame."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"{path}: cannot open video")
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise InputError(f"{path}: no readable frame in video")
        while ok and frame is not None:
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            ok, frame = cap.read()
    finally:
        cap.release()
