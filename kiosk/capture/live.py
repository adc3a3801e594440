"""The per-frame pipeline of live guidance: track the face, count faces now and then, measure the
light, steer the LEDs, and run guidance — everything the session needs from one frame."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from kiosk.capture.guidance import Guidance, Guide, measure_frame
from kiosk.capture.lighting import LightingLoop, measure_light
from kiosk.capture.rules import Rules
from kiosk.photo.measures import align_face, glasses_glare, sharpness_at_scale
from kiosk.vision.accessories import crown_hat, head_covering
from kiosk.vision.glasses import detect_glasses
from kiosk.vision.hair import Crown, crown_covering


class LiveLoop:
    """One per service; ``start`` at each entry into live guidance, ``stop`` when it ends."""

    # frames between runs of the full-range detector (tracking follows one face; this sees the
    # others, also a second person standing further back that the short-range detector misses)
    COUNT_EVERY = 10
    LOOK_EVERY = 3  # frames between readings of the head covering and the sharpness (10 Hz at 30 fps)
    GLARE_EVERY = 9  # frames between glare readings on glasses (3.3 Hz: the prompt waits 0.5 s anyway)
    # frames between readings of the crown with the hair model (~60 ms CPU on a PC: 1 Hz at 30 fps),
    # so a hat worn high that the still's check refuses is told live too. It runs on its own thread,
    # never stalling a frame; a new face starts one at once, and its verdict holds until the next
    CROWN_EVERY = 30

    def __init__(self, analyzer: Any, rules: Rules, lights: Any | None = None):
        self.analyzer, self.base_rules, self.lights = analyzer, rules, lights
        self.rules = rules
        self.guide = Guide(rules)
        self.lighting = LightingLoop(rules.lighting)
        self.n = 0
        self.faces = 0
        self.covered: bool | None = None
        self.crown_hat: bool | None = None  # the hair model's last verdict beyond the forehead's
        self._crown_job: Future | None = None
        self._crown_face = 0  # counts faces lost: a reading started for an earlier face is dropped
        self._crown_pool: ThreadPoolExecutor | None = None
        self.sharp: float | None = None
        self.glasses: bool | None = None
        self.glare: float | None = None  # lens glare, measured only on a face wearing glasses
        self.last: Guidance | None = None

    def start(self, thresholds: dict[str, Any]) -> None:
        self.rules = self.base_rules.for_profile(thresholds)
        self.guide = Guide(self.rules)
        self.analyzer.reset()
        self.n = 0
        self.covered = self.sharp = self.glasses = self.glare = self.crown_hat = None
        self._crown_face += 1  # a reading still running belongs to the last citizen: dropped
        self.last = None
        self._set(self.lighting.reset())

    def stop(self) -> None:
        self.analyzer.reset()
        self.guide.reset()
        self.last = None
        self._set(self.lighting.idle())

    def _set(self, levels: dict[str, float]) -> None:
        if self.lights is not None:
            self.lights.set(levels)

    def process(self, rgb: np.ndarray, t: float) -> Guidance:
        analysis = self.analyzer.track(rgb)
        face = analysis.faces[0] if analysis.faces else None
        if self.n % self.COUNT_EVERY == 0 or face is None:
            self.faces = self.analyzer.count_faces(rgb)
        self.n += 1
        light = measure_light(rgb, face) if face is not None else None
        self._set(self.lighting.update(light))
        if face is None:
            self.covered = self.sharp = self.glasses = self.glare = self.crown_hat = None
            self._crown_face += 1
        elif (self.n - 1) % self.LOOK_EVERY == 0 or self.sharp is None:
            hc = head_covering(rgb, face.landmarks, face.eye_centers)
            self._read_crown(rgb, face)
            self.covered = (hc.covered or bool(self.crown_hat)) if hc is not None else None
            # the photo check's own measures, so guidance is never laxer than the final check
            self.sharp = sharpness_at_scale(rgb, face.landmarks, face.eye_centers)
            self._look_at_glasses(rgb, face)
        covered, sharp = self.covered, self.sharp
        size = (rgb.shape[1], rgb.shape[0])
        m = measure_frame(
            self.faces, face, size, light, self.rules.target_eye_y, covered, self.glasses, self.glare
        )
        if sharp is not None:
            m.values["sharpness"] = sharp
        self.last = self.guide.update(m, t)
        return self.last

    def _read_crown(self, rgb: np.ndarray, face: Any) -> None:
        """Take the last finished crown reading; start the next one when due and none is running."""
        job = self._crown_job
        if job is not None and job.done():
            self._crown_job = None
            face_id, crown = job.result()
            if face_id == self._crown_face:
                self.crown_hat = crown is not None and crown_hat(crown)
        due = self.crown_hat is None or (self.n - 1) % self.CROWN_EVERY == 0
        if due and self._crown_job is None:
            if self._crown_pool is None:
                self._crown_pool = ThreadPoolExecutor(1, thread_name_prefix="kiosk-crown")
            self._crown_job = self._crown_pool.submit(
                self._crown, self._crown_face, rgb.copy(), face.landmarks.copy()
            )

    @staticmethod
    def _crown(face_id: int, rgb: np.ndarray, landmarks: np.ndarray) -> tuple[int, Crown | None]:
        try:
            return face_id, crown_covering(rgb, landmarks)
        except Exception:  # noqa: BLE001 - a failed reading leaves guidance on the forehead's colour
            return face_id, None

    def settle(self) -> None:
        """Wait for a crown reading under way (replays and tests: the same frames, the same prompts)."""
        if self._crown_job is not None:
            self._crown_job.exception()

    def _look_at_glasses(self, rgb: np.ndarray, face: Any) -> None:
        """Glasses, and then the photo check's glare measure on their lenses: guidance asks to tilt
        them only where the check would, and says nothing of glasses to a face without them."""
        seen = detect_glasses(rgb, face.eye_centers)
        self.glasses = None if seen is None else seen.worn
        if not self.glasses:
            self.glare = None
        elif self.glare is None or (self.n - 1) % self.GLARE_EVERY == 0:  # the measure costs ~5 ms
            self.glare = glasses_glare(align_face(rgb, face.landmarks, face.eye_centers)).fraction
