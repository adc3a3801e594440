"""`check` and `make-photo`: decode, analyse, segment, measure; compose, encode, re-measure.

Images come in as arrays (a still) or encoded bytes (a file's); results go out as objects
(kiosk.photo.results) — writing files and JSON is the caller's edge. Models load once per
PhotoTools, so a session (or a test run) pays for them once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from kiosk.config import VisionConfig
from kiosk.errors import InputError, KioskError
from kiosk.photo.checks import (
    byte_range,
    evaluate,
    head_covering_check,
    head_in_frame,
    source_resolution_check,
)
from kiosk.photo.compose import Calibration, choose_scale, compose
from kiosk.photo.encode import encode_in_range
from kiosk.photo.measures import face_geometry
from kiosk.photo.profiles import Color, Profile, get_profile
from kiosk.photo.results import CheckReport, CheckResult, PhotoResult, plain
from kiosk.vision.analyzer import FaceAnalyzer, rescale
from kiosk.vision.imageio import draft_scale, load_image, original_size
from kiosk.vision.segmentation import shared as shared_segmenter
from kiosk.vision.types import Analysis

MAX_ATTEMPTS = 3  # compose, re-measure, correct: the second attempt almost always lands
GEOMETRY_IDS = ("face_size", "head_length", "head_top_margin", "eye_line")


class PhotoError(KioskError):
    """The input holds no usable single face for a document photo (exit 1)."""


def _read(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None


def _decode(data: bytes, name: str, max_side: int | None) -> np.ndarray:
    """load_image on bytes, with errors naming the file rather than "<bytes>"."""
    try:
        return load_image(data, max_side=max_side)
    except InputError as exc:
        raise InputError(str(exc).replace("<bytes>", name, 1)) from None


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(w, h) <= max_side:
        return rgb
    s = max_side / max(w, h)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


class PhotoTools:
    """The face analyser and the person segmenter, loaded once."""

    def __init__(self, vision: VisionConfig | None = None, analyzer: FaceAnalyzer | None = None):
        """``analyzer``: one already loaded (the station's live one, used from the same thread):
        each FaceAnalyzer's interpreters and packed weights take ~29 MB."""
        self.vision = vision or VisionConfig()
        self.analyzer = analyzer if analyzer is not None else FaceAnalyzer(self.vision)
        self.segmenter = shared_segmenter(self.vision.num_threads)  # also the crown reader's (hair.py)
        self.cutout = "refined"  # kiosk.photo.compose's cut-out ("coarse": the earlier one, to compare)

    def _analyze(self, rgb: np.ndarray) -> tuple[np.ndarray, Analysis]:
        """Analysis of a copy no larger than analysis_max_side; landmarks in the copy's pixels."""
        copy = _shrink(rgb, self.vision.analysis_max_side)
        return copy, self.analyzer.analyze(copy)

    def check(self, source: str | Path | bytes, profile: Profile | str) -> CheckReport:
        """The check report of an image file (or its bytes, decoded in memory) against a profile."""
        profile = get_profile(profile) if isinstance(profile, str) else profile
        data = _read(source)
        rgb = _decode(
            data, "photo" if isinstance(source, bytes) else str(source), self.vision.analysis_max_side
        )
        full = original_size(data)
        copy, analysis = self._analyze(rgb)
        person = self.segmenter.mask(copy)
        results = evaluate(copy, analysis, profile, person, full, len(data))
        return CheckReport(profile.id, profile.version, results)

    def make(self, rgb: np.ndarray, profile: Profile | str, background: str | None = None) -> PhotoResult:
        """The document photo of a still held in memory (RGB, uint8), re-checked from its JPEG bytes.

        The same steps as make_photo on the still's JPEG: analysed on the copy a draft decode would
        give (the still reduced by the same power of two), composed from the full still only when
        that copy lacks the detail; so the terminal's still and its file get the same verdict.
        """
        profile = get_profile(profile) if isinstance(profile, str) else profile
        color = _background(profile, background)
        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.shape[2:] == (3,)):
            raise InputError(f"still: expected an RGB uint8 image, got {getattr(rgb, 'shape', type(rgb))}")
        h, w = rgb.shape[:2]
        k = draft_scale(w, h, self.vision.analysis_max_side)
        small = rgb if k == 1 else cv2.resize(rgb, (-(-w // k), -(-h // k)), interpolation=cv2.INTER_AREA)
        return self._make(small, lambda: rgb, profile, color, (w, h))

    def make_photo(
        self,
        source: str | Path | bytes,
        profile: Profile | str,
        background: str | None = None,
    ) -> PhotoResult:
        """The document photo of an image file (or its bytes); the caller writes ``jpeg`` where it wants.

        A JPEG is decoded in draft mode for the analysis, and in full only when the photo needs the detail.
        """
        profile = get_profile(profile) if isinstance(profile, str) else profile
        color = _background(profile, background)
        data = _read(source)
        name = "image" if isinstance(source, bytes) else str(source)
        rgb = _decode(data, name, self.vision.analysis_max_side)  # JPEG stills decode at 1/2..1/8
        # full size, or the largest draft within the decode budget
        return self._make(rgb, lambda: _decode(data, name, None), profile, color, original_size(data))

    def _make(
        self,
        rgb: np.ndarray,
        full: Callable[[], np.ndarray],
        profile: Profile,
        color: Color | None,
        source_size: tuple[int, int],
    ) -> PhotoResult:
        """Analyse `rgb` (the source, or a reduced copy of it); compose from `full()` when the
        photo's scale needs more detail than the copy has."""
        copy, analysis = self._analyze(rgb)
        _one_face(analysis)
        # judged on the analysed copy, the pixels `check` of the source file reads
        covering = head_covering_check(copy, analysis.faces[0])
        covering.severity = profile.severity.get("head_covering", "error")
        analysis = rescale(analysis, rgb.shape[1] / copy.shape[1], rgb.shape[1], rgb.shape[0])
        scale, _ = choose_scale(profile, face_geometry(analysis.faces[0]))
        if scale > 0.5 and rgb.shape[1] < source_size[0]:  # the reduced copy lacks the detail
            draft_w = rgb.shape[1]
            rgb = full()
            analysis = rescale(analysis, rgb.shape[1] / draft_w, rgb.shape[1], rgb.shape[0])
        return self._compose(rgb, analysis, profile, color, source_size, covering)

    def _compose(
        self,
        rgb: np.ndarray,
        analysis: Analysis,
        profile: Profile,
        color: Color | None,
        source_size: tuple[int, int],
        covering: CheckResult,
    ) -> PhotoResult:
        """Compose, encode, re-check the encoded bytes; correct the placement from what was measured."""
        best: PhotoResult | None = None
        best_misses = 0
        calib = Calibration()
        for _ in range(MAX_ATTEMPTS):
            comp = compose(rgb, analysis.faces[0], profile, self.segmenter, color, calib, self.cutout)
            # photo pixels per pixel of the source itself (rgb may be a reduced copy of it)
            comp.placement.enlargement = comp.placement.scale * rgb.shape[1] / source_size[0]
            enc = encode_in_range(comp.image, *byte_range(profile), profile.dpi)
            report = self.check(enc.data, profile)  # the output is judged from its bytes, decoded again
            _source_framing(report, comp.placement, profile)
            _source_resolution(report, comp.placement.enlargement, profile)
            _source_covering(report, covering)
            misses = sum(1 for c in report.checks if c.id in GEOMETRY_IDS and not c.passed)
            if best is None or misses < best_misses:
                best = PhotoResult(enc.data, report, enc, comp.placement, source_size)
                best_misses = misses
            if misses == 0:
                break
            calib = calib.learn(comp.placement.intended, _geometry_measures(report, profile))
        assert best is not None
        return best


def _source_framing(report: CheckReport, placement, profile: Profile) -> None:
    """head_in_frame of a made photo is judged on the source too (the output's own edges cannot
    show a head the composer already cut flat): the source's failure replaces the output's pass.
    When the source holds the whole head with room above it and only the photo cuts the hair, the
    hair is taller than the document's frame allows at its eye line: said so ("too_tall"), since
    "leave space above the head" would send the citizen to retake the same photo."""
    own = report.get("head_in_frame")
    w, h = profile.size
    src = head_in_frame(placement.contact, profile, w, h)
    src.severity = profile.severity.get("head_in_frame", "error")
    if own is None:
        report.checks.insert(1, src)
    elif own.passed and not src.passed:
        report.checks[report.checks.index(own)] = src
    elif not own.passed and src.passed and src.outcome == "pass":
        own.outcome = "too_tall"


def _source_resolution(report: CheckReport, enlargement: float, profile: Profile) -> None:
    """source_resolution of a made photo is judged on the source: the finished file is the
    profile's size whatever detail went into it, so a face the composer had to enlarge beyond the
    profile's limit (a small upload, a face far away) fails in place of the file's pass."""
    src = source_resolution_check(enlargement, profile)
    src.severity = profile.severity.get("source_resolution", "error")
    _source_fails(report, src)


def _source_covering(report: CheckReport, src: CheckResult) -> None:
    """head_covering of a made photo is judged on the source too: against the photo's plain
    background the hair model can read a dark cap band as hair (Grace Hopper's cap: crown 0.41 on
    the photo, 0.54-0.61 on the source), so a covering the source shows replaces the photo's pass
    (a source the check cannot read leaves the photo's own verdict)."""
    if src.outcome == "fail":
        _source_fails(report, src)


def _source_fails(report: CheckReport, src: CheckResult) -> None:
    """The source's verdict of a check in the made photo's report: a failure on the source replaces
    the photo's own pass (or joins the report when the photo has no such check)."""
    own = report.get(src.id)
    if own is None:
        report.checks.append(src)
    elif own.passed and not src.passed:
        report.checks[report.checks.index(own)] = src


def _background(profile: Profile, background: str | None) -> Color | None:
    """The profile's background colour of that id (None: the profile's first); unknown ids refused."""
    if background is None:
        return None
    color = next((c for c in profile.backgrounds if c.id == background), None)
    if color is None:
        allowed = ", ".join(c.id for c in profile.backgrounds)
        raise InputError(f"background {background!r} is not allowed for {profile.id} (allowed: {allowed})")
    return color


def _one_face(analysis: Analysis) -> None:
    """One person in view, counted as single_face and live guidance count: every face the
    detectors find, also one the mesh rejects (a small face behind), so make-photo never composes
    a photo that its own check would refuse for a second face."""
    n = len(analysis.faces) + analysis.unmeshed
    if n > 1:
        many = f"{n} faces found: only one person may be in the photo"
        raise PhotoError(many, code="error.many_faces", n=n)
    if not analysis.faces:  # nothing in view, or one face the mesh cannot follow: nothing to place
        raise PhotoError("no face found", code="error.no_face")


def _geometry_measures(report: CheckReport, profile: Profile) -> dict[str, float | None]:
    """Rule -> value measured on the photo, from a check report, as precise as the report claims.

    (Rounded like the JSON: the correction loop is sensitive to the last digits, and learning from
    the reported values keeps make-photo's output what it was when the report was a dict.)
    """
    by_id = {c.id: plain(c.value) for c in report.checks}
    return {rule: by_id.get(r.check_id) for rule, r in profile.rules.items()}


def run_check(path: str | Path, profile_id: str, vision: VisionConfig | None = None) -> CheckReport:
    return PhotoTools(vision).check(path, profile_id)


def make_photo(
    path: str | Path,
    profile_id: str,
    vision: VisionConfig | None = None,
    background: str | None = None,
) -> PhotoResult:
    return PhotoTools(vision).make_photo(path, profile_id, background)
