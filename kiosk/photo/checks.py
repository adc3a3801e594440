"""Compliance checks of one image against one document profile: value, threshold, verdict, message.

Check ids are the stable ones of DESIGN.md (plus ``head_length``, ``white_clothing``,
``glasses_glare`` and ``head_covering``). A check
that cannot be measured (no face, no visible background) fails with the "not_measured" message,
never passes silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kiosk.photo import measures as M
from kiosk.photo.framing import EdgeContact, image_edge_contact
from kiosk.photo.matting import off_color_share, seen_background
from kiosk.photo.profiles import Profile, Rule
from kiosk.photo.results import CheckResult
from kiosk.vision.accessories import head_covering
from kiosk.vision.accessories import rules as covering_rules
from kiosk.vision.glasses import detect_glasses
from kiosk.vision.hair import rules as crown_rules
from kiosk.vision.types import Analysis, Face

FACE_CHECKS = (
    "face_centered",
    "yaw",
    "pitch",
    "roll",
    "eyes_open",
    "mouth_closed",
    "illumination_uniformity",
    "exposure",
    "sharpness",
    "glasses_glare",
    "head_covering",
)  # besides the geometry rules: need a face


def _range(
    check_id: str,
    value: float,
    lo: float | None,
    hi: float | None,
    low: str = "too_small",
    high: str = "too_large",
) -> CheckResult:
    if lo is not None and value < lo:
        return CheckResult(check_id, value, [lo, hi], False, low)
    if hi is not None and value > hi:
        return CheckResult(check_id, value, [lo, hi], False, high)
    return CheckResult(check_id, value, [lo, hi], True, "pass")


def _unmeasured(check_id: str, threshold: Any = None) -> CheckResult:
    return CheckResult(check_id, None, threshold, False, "not_measured")


def _rule_check(rule: Rule, geo: M.FaceGeometry, hair: float | None, k: float, height: float) -> CheckResult:
    """One geometry rule; measures are divided by k to be in pixels of the profile's nominal size."""
    cid = rule.check_id
    if rule.kind == "face_width":
        return _range(cid, geo.face_width / k, rule.min, rule.max)
    if rule.kind == "inter_eye":
        return _range(cid, geo.inter_eye / k, rule.min, rule.max)
    if rule.kind == "head_length":
        return _range(cid, geo.head_length / k, rule.min, rule.max)
    if rule.kind == "head_top":
        if hair is None:
            return _unmeasured(cid, [rule.min, rule.max])
        return _range(cid, hair / k, rule.min, rule.max, "too_close", "too_far")
    if rule.kind == "eye_line":
        return _range(cid, (height - geo.eye_y) / k, rule.min, rule.max, "too_low", "too_high")
    raise AssertionError(rule.kind)


def evaluate(
    rgb: np.ndarray,
    analysis: Analysis,
    profile: Profile,
    person: np.ndarray | None,
    full_size: tuple[int, int],
    file_bytes: int | None,
) -> list[CheckResult]:
    """All checks of `profile` on an image (or its analysed copy `rgb`, landmarks in its pixels).

    `person` is the segmentation mask at rgb's size; `full_size` and `file_bytes` are those of
    the file itself, for the resolution and file-size checks.
    """
    t = profile.thresholds
    h, w = rgb.shape[:2]
    results: list[CheckResult] = []
    n = len(analysis.faces) + analysis.unmeshed  # every face in view, as live guidance counts them
    results.append(
        CheckResult("single_face", n, 1, n == 1, "pass" if n == 1 else ("none" if n == 0 else "many"))
    )
    face = analysis.faces[0] if analysis.faces else None  # the largest face when there are several
    k = w / profile.size[0]  # image pixels per nominal profile pixel
    geo = M.face_geometry(face) if face is not None else None
    hair = M.hair_top(person, geo) if (face is not None and person is not None) else None
    contact = None
    if geo is not None and person is not None:
        contact = image_edge_contact(person, geo.eye_y, round(t["head_in_frame_margin"] * h))
    results.append(head_in_frame(contact, profile, w, h))

    for name in profile.priority:
        rule = profile.rules[name]
        if rule.enforce:
            results.append(_rule_check(rule, geo, hair, k, h) if geo else _unmeasured(rule.check_id))
    if geo is not None:
        off = (geo.center_x - w / 2) / w
        ok = abs(off) <= t["face_centered_max"]
        results.append(
            CheckResult("face_centered", off, t["face_centered_max"], ok, "pass" if ok else "fail")
        )
        for cid, value, limit in (
            ("yaw", face.pose.yaw, t["yaw_max_deg"]),
            ("pitch", face.pose.pitch, t["pitch_max_deg"]),
            ("roll", face.pose.roll, t["roll_max_deg"]),
        ):
            ok = abs(value) <= limit
            results.append(CheckResult(cid, value, [-limit, limit], ok, "pass" if ok else "fail"))
        results.append(_eyes_open(face, t["eyes_open_min"]))
        ok = face.mouth_openness <= t["mouth_open_max"]
        results.append(
            CheckResult(
                "mouth_closed", face.mouth_openness, t["mouth_open_max"], ok, "pass" if ok else "fail"
            )
        )
        aligned = M.align_face(rgb, face.landmarks, face.eye_centers)
        iu = M.illumination_uniformity(aligned)
        ok = iu >= t["illumination_uniformity_min"]
        results.append(
            CheckResult(
                "illumination_uniformity", iu, t["illumination_uniformity_min"], ok, "pass" if ok else "fail"
            )
        )
        results.append(_exposure(M.exposure(aligned), t))
        sh = M.sharpness_at_scale(rgb, face.landmarks, face.eye_centers)
        ok = sh >= t["sharpness_min"]
        results.append(CheckResult("sharpness", sh, t["sharpness_min"], ok, "pass" if ok else "fail"))
        results.append(_glasses_glare(rgb, face, aligned, t["glasses_glare_max"]))
        results.append(head_covering_check(rgb, face))
    else:
        results += [_unmeasured(c) for c in FACE_CHECKS]

    results += _background_checks(rgb, person, profile, geo, k)
    results.append(_resolution(full_size, profile))
    # a file's own pixels against the profile's: the enlargement it needs to reach the profile's size
    results.append(
        source_resolution_check(max(profile.size[0] / full_size[0], profile.size[1] / full_size[1]), profile)
    )
    if file_bytes is not None:
        results.append(_file_size(file_bytes, profile))
    for r in results:
        r.severity = profile.severity.get(r.id, "error")
    return results


def head_in_frame(contact: EdgeContact | None, profile: Profile, width: int, height: int) -> CheckResult:
    """The whole head (hair included) inside what the camera saw, with a margin, and no part of
    the person where the source ends (kiosk.photo.framing): otherwise the photo would show a
    flat-cut head or an invented background in place of the person (issue 18)."""
    t = profile.thresholds
    limit = t["head_in_frame_touch_max"]
    if contact is None:
        return _unmeasured("head_in_frame", limit)
    margin = t["head_in_frame_margin"] * height
    value = contact.worst(width)
    ok = value <= limit and contact.crown_margin >= margin
    crown = None if np.isinf(contact.crown_margin) else contact.crown_margin
    details = {"head_px": contact.head, "body_px": contact.body, "crown_margin_px": crown}
    return CheckResult("head_in_frame", value, limit, ok, "pass" if ok else "fail", details=details)


def head_covering_check(rgb: np.ndarray, face: Face) -> CheckResult:
    """A hat, cap, hood or helmet (kiosk.vision.accessories and .hair; limits in their data): over
    the forehead by its colour, or around the crown by the hair model. A religious head covering
    that wraps the face and leaves the whole face visible (forehead, brows, cheeks, chin) passes in
    every profile.
    """
    hc = head_covering(rgb, face.landmarks, face.eye_centers, crown=True)
    threshold = {"forehead_skin_min": covering_rules().covered_below, "crown_max": crown_rules().covered_min}
    if hc is None:
        return _unmeasured("head_covering", threshold)
    details: dict = {"hair": hc.hair}
    if hc.crown is not None:
        details["crown"] = round(hc.crown.crown, 3)
        details["wrap"] = round(hc.crown.wrap, 3)
    return CheckResult(
        "head_covering",
        hc.forehead_skin,
        threshold,
        not hc.covered,
        "fail" if hc.covered else "pass",
        details=details,
    )


def _glasses_glare(rgb: np.ndarray, face: Face, aligned: M.AlignedFace, limit: float) -> CheckResult:
    """Glare on spectacle lenses, asked of a face only when it wears glasses (kiosk.vision.glasses).

    Without a frame found, what the lens areas show is skin, and a shine on skin is no reason to
    tell anyone about glasses: the check passes ("no_glasses"), its measure kept in the details.
    A face too small to see a frame (glasses None) is judged on the measure alone, in words that
    do not assume glasses.
    """
    worn = face.glasses if face.glasses is not None else detect_glasses(rgb, face.eye_centers)
    g = M.glasses_glare(aligned)
    details = {
        "glasses": None if worn is None else worn.worn,
        "left": g.per_lens[0],
        "right": g.per_lens[1],
        "spots": g.spots,
    }
    ok = g.fraction <= limit
    if worn is not None and not worn.worn:
        return CheckResult("glasses_glare", g.fraction, limit, True, "no_glasses", details=details)
    outcome = "pass" if ok else ("fail" if worn is not None else "reflection")
    return CheckResult("glasses_glare", g.fraction, limit, ok, outcome, details=details)


def _eyes_open(face: Face, limit: float) -> CheckResult:
    """Each eye on its own (a wink fails): the eyelid-contour aperture, never the mesh's.

    The 468-point mesh keeps the lids apart on closed eyes, so without the iris model's contour
    (vision.iris off) the check is not measured rather than passed.
    """
    if face.eye_state is None:
        return _unmeasured("eyes_open", limit)
    left, right = face.eye_openness
    states = ["open" if v >= limit else "closed" for v in (left, right)]
    ok = states == ["open", "open"]
    details = {"left": left, "right": right, "left_state": states[0], "right_state": states[1]}
    return CheckResult("eyes_open", min(left, right), limit, ok, "pass" if ok else "fail", details=details)


def _exposure(e: M.Exposure, t: dict) -> CheckResult:
    lo, hi = t["exposure_mean"]
    details = {"under": e.under, "over": e.over, "dynamic_range": e.dynamic_range}
    threshold = {
        "mean": [lo, hi],
        "under_max": t["exposure_under_max"],
        "over_max": t["exposure_over_max"],
        "dynamic_range_min": t["dynamic_range_min"],
    }
    if e.mean < lo or e.under > t["exposure_under_max"]:
        outcome = "too_dark"
    elif e.mean > hi or e.over > t["exposure_over_max"]:
        outcome = "too_bright"
    elif e.dynamic_range < t["dynamic_range_min"]:
        outcome = "low_contrast"
    else:
        outcome = "pass"
    return CheckResult("exposure", e.mean, threshold, outcome == "pass", outcome, details=details)


def _background_checks(
    rgb: np.ndarray, person: np.ndarray | None, profile: Profile, geo: M.FaceGeometry | None, k: float
) -> list[CheckResult]:
    t = profile.thresholds
    out: list[CheckResult] = []
    bg = region = None
    if person is not None:  # the whole background as the segmenter sees it, not sample patches
        region = seen_background(person)
        bg = M.background(rgb, region)
    limits = {
        "off_color_max": t["background_off_color_max"],
        "luminance_std_max": t["background_uniformity_max"],
    }
    if bg is None:
        out.append(_unmeasured("background_uniformity", limits))
        out.append(_unmeasured("background_color", [c.id for c in profile.backgrounds]))
    else:
        match = next((c for c in profile.backgrounds if _color_matches(bg.mean_rgb, c)), None)
        # dirt: background pixels not of the colour (the matched one, else the profile's first)
        off = off_color_share(rgb, region, match or profile.backgrounds[0], t["background_color_tolerance"])
        off = 1.0 if off is None else off
        ok = bg.luminance_std <= t["background_uniformity_max"] and off <= t["background_off_color_max"]
        out.append(
            CheckResult(
                "background_uniformity",
                off,
                limits,
                ok,
                "pass" if ok else "fail",
                details={"luminance_std": bg.luminance_std, "pixels": bg.pixels},
            )
        )
        out.append(
            CheckResult(
                "background_color",
                list(bg.mean_rgb),
                [c.id for c in profile.backgrounds],
                match is not None,
                "pass" if match else "fail",
                details={"matched": match.id if match else None},
            )
        )
    if any(c.id == "white" for c in profile.backgrounds):
        frac = None
        if person is not None and geo is not None:
            frac = M.white_clothing(rgb, person, geo.chin_y + 0.15 * geo.head_length)
        if frac is None:
            out.append(
                CheckResult(
                    "white_clothing", None, t["white_clothing_max"], True, "pass", details={"measured": False}
                )
            )
        else:
            ok = frac <= t["white_clothing_max"]
            out.append(
                CheckResult("white_clothing", frac, t["white_clothing_max"], ok, "pass" if ok else "fail")
            )
    return out


def _color_matches(rgb: tuple[float, float, float], c) -> bool:
    inside = all(lo - 0.5 <= v <= hi + 0.5 for v, lo, hi in zip(rgb, c.min, c.max, strict=True))
    return inside and (c.max_spread is None or max(rgb) - min(rgb) <= c.max_spread)


def _resolution(size: tuple[int, int], profile: Profile) -> CheckResult:
    (w, h), (w0, h0), (w1, h1) = size, profile.size, profile.size_max
    ok = w0 <= w <= w1 and h0 <= h <= h1 and abs(w * h0 - h * w0) <= max(w0, h0)  # same aspect within 1 px
    return CheckResult("resolution", [w, h], {"min": [w0, h0], "max": [w1, h1]}, ok, "pass" if ok else "fail")


def source_resolution_check(enlargement: float, profile: Profile) -> CheckResult:
    """Photo pixels per source pixel: a face enlarged beyond the limit is soft (fine detail the
    source never had), and a platform reviewer refuses it although every other check passes."""
    limit = profile.thresholds["source_enlargement_max"]
    ok = enlargement <= limit
    return CheckResult("source_resolution", enlargement, limit, ok, "pass" if ok else "too_small")


def byte_range(profile: Profile) -> tuple[int, int]:
    """Bytes that satisfy the KB range whether the platform counts 1000 or 1024 bytes per KB."""
    lo, hi = profile.file_kb
    return int(np.ceil(lo * 1024)), int(np.floor(hi * 1000))


def _file_size(n: int, profile: Profile) -> CheckResult:
    lo, hi = byte_range(profile)
    r = _range("file_size", n / 1024, lo / 1024, hi / 1024)
    r.threshold = list(profile.file_kb)
    r.details = {"bytes": n, "bytes_range": [lo, hi]}
    return r
